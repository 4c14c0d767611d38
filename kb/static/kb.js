/* kb search page enhancements. Everything works without this file: facets are checkboxes of a
 * GET form and every state is a URL. With it, "/" focuses the search box, long facet lists can
 * be filtered, and facet clicks, chips and pagination swap the results in place (the URL is
 * pushed, so sharing and the back button still work, and the count is announced). */
(function () {
"use strict";

/* Keys typed into a field are text, not the page's shortcuts ("/", j, k): the parts below share
 * this test, each in a scope of its own. */
function isTyping(el) {
  return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
}

(function () {
  "use strict";

  var doc = document;
  var NARROW = "(max-width: 860px)";

  function searchBox() { return doc.getElementById("q"); }

  // "/" focuses the search box, as on most search sites.
  doc.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey || isTyping(ev.target)) return;
    var box = searchBox();
    if (!box) return;
    ev.preventDefault();
    box.focus();
    box.select();
  });

  function showJsOnly() {
    doc.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
  }

  showJsOnly();

  var form = doc.getElementById("search-form");
  var content = doc.getElementById("content");
  var filters = doc.getElementById("filters");
  if (filters && window.matchMedia && window.matchMedia(NARROW).matches) {
    filters.open = false; // on a phone the results come first; the facets are one tap away
  }
  if (!form || !content || !window.fetch || !window.DOMParser || !window.history.pushState) return;

  var loaded = location.pathname + location.search;
  var pending = null;
  var latest = 0; // only the newest request may swap the page (an older answer can arrive last)

  function importChildren(from, into) {
    var nodes = Array.prototype.map.call(from.childNodes, function (n) { return doc.importNode(n, true); });
    into.replaceChildren.apply(into, nodes);
  }

  function swap(next) {
    next.querySelectorAll("[data-swap]").forEach(function (el) {
      var cur = doc.getElementById(el.id);
      if (cur) cur.replaceWith(doc.importNode(el, true));
    });
    // The live region itself stays in place so screen readers announce its new text.
    next.querySelectorAll("[data-live]").forEach(function (el) {
      var cur = doc.getElementById(el.id);
      if (cur) importChildren(el, cur);
    });
    doc.title = next.title;
    var alt = doc.getElementById("json-alternate");
    var nextAlt = next.getElementById("json-alternate");
    if (alt && nextAlt) alt.setAttribute("href", nextAlt.getAttribute("href"));
  }

  function navigate(url, opts) {
    opts = opts || {};
    if (pending) pending.abort();
    var ticket = ++latest;
    var controller = window.AbortController ? new AbortController() : null;
    pending = controller;
    var col = doc.querySelector(".results-col");
    if (col) col.setAttribute("aria-busy", "true");
    var typed = {};
    // what was typed in a facet's value search survives the swap (facets.js searches it again)
    doc.querySelectorAll("[data-facet-search]").forEach(function (i) { typed[i.id] = i.value; });

    var headers = { Accept: "text/html" };
    // the insights count a search once: not each keystroke's, nor Enter on one already counted
    if (opts.typing || opts.counted) headers["X-KB-Record"] = "no";
    fetch(url, { headers: headers, credentials: "same-origin",
                 signal: controller ? controller.signal : undefined })
      .then(function (res) {
        var type = res.headers.get("content-type") || "";
        if (!res.ok || type.indexOf("text/html") === -1) throw new Error("unexpected response");
        return res.text();
      })
      .then(function (html) {
        if (ticket !== latest) return;
        var next = new DOMParser().parseFromString(html, "text/html");
        if (!next.getElementById("content")) throw new Error("not a search page");
        swap(next);
        if (opts.push) history.pushState({ kb: true }, "", url);
        else if (opts.replace) history.replaceState({ kb: true }, "", url);
        loaded = location.pathname + location.search;
        var box = searchBox();
        var nextBox = next.getElementById("q");
        if (box && nextBox && !opts.push && !opts.typing) box.value = nextBox.value;
        showJsOnly();
        Object.keys(typed).forEach(function (id) {
          var input = doc.getElementById(id);
          if (input && typed[id]) {
            input.value = typed[id];
            input.dispatchEvent(new Event("input", { bubbles: true }));
          }
        });
        restoreFocus(opts);
        if (opts.typing) settle(url);
      })
      .catch(function (err) {
        if ((err && err.name === "AbortError") || ticket !== latest) return;
        if (opts.typing) return; // the next keystroke or Enter tries again
        window.location.assign(url); // fall back to an ordinary page load
      })
      .then(function () {
        if (pending === controller) {
          pending = null;
          if (col) col.removeAttribute("aria-busy");
        }
      });
  }

  function restoreFocus(opts) {
    var results = doc.getElementById("results");
    if (opts.scroll) {
      var col = doc.querySelector(".results-col");
      if (col && col.getBoundingClientRect().top < 0) col.scrollIntoView({ block: "start" });
    }
    var target = opts.focusId ? doc.getElementById(opts.focusId) : null;
    if (!target && opts.fallbackList) {
      var list = doc.getElementById(opts.fallbackList);
      target = list && list.querySelector("input");
    }
    if (!target && opts.focusResults) target = results;
    if (target) target.focus({ preventScroll: !opts.scroll });
  }

  doc.addEventListener("change", function (ev) {
    var box = ev.target;
    if (!box.matches || !box.matches("input[type=checkbox][data-toggle-url]")) return;
    var list = box.closest("ul");
    navigate(box.getAttribute("data-toggle-url"),
             { push: true, focusId: box.id, fallbackList: list && list.id });
  });

  doc.addEventListener("click", function (ev) {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    var link = ev.target.closest && ev.target.closest("a[data-nav]");
    if (!link) return;
    ev.preventDefault();
    var paging = !!link.closest(".pagination");
    navigate(link.getAttribute("href"), { push: true, focusResults: true, scroll: paging });
  });

  function formUrl(prefix) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (key === "q" && !String(value).trim()) return; // an empty query is the default
      params.append(key, value);
    });
    if (prefix) params.append("prefix", "1");
    var qs = params.toString();
    return form.getAttribute("action") + (qs ? "?" + qs : "");
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    clearTimeout(typingTimer);
    var url = formUrl(false);
    unsettled = null;
    clearTimeout(settleTimer);
    navigate(url, { push: true, counted: searchKey(url) === counted });
  });

  /* -- a search typed but never submitted still counts for the insights (the queries that found
   * nothing above all): once a typed search's results have stood for SETTLE_MS without a newer
   * keystroke, or a result is opened or the page left before that, the page asks for it once
   * more without the "don't record" header (a HEAD: the server records it, its answer comes
   * from the result cache and no body travels).  Enter on that same search is not counted again. -- */
  var SETTLE_MS = 1500;
  var settleTimer = 0;
  var unsettled = null;
  var counted = null;
  function searchKey(url) {
    var params = new URL(url, location.href).searchParams;
    params.delete("prefix");
    params.delete("page");
    params.set("q", (params.get("q") || "").trim().replace(/\s+/g, " "));
    params.sort();
    return params.toString();
  }
  function settle(url) {
    unsettled = url;
    clearTimeout(settleTimer);
    settleTimer = setTimeout(recordTyped, SETTLE_MS);
  }
  function recordTyped() {
    clearTimeout(settleTimer);
    if (!unsettled) return;
    var url = unsettled;
    unsettled = null;
    counted = searchKey(url);
    fetch(url, { method: "HEAD", credentials: "same-origin", cache: "no-store", keepalive: true })
      .catch(function () {});
  }
  doc.addEventListener("click", function (ev) {
    if (ev.target.closest && ev.target.closest("a.result-link")) recordTyped();
  }, true);
  window.addEventListener("pagehide", recordTyped);

  /* -- search as you type (issue 13): 150 ms after the last keystroke the results are swapped in
   * place, the word being typed read as a prefix (prefix=1 unless it ends with a space); the URL
   * is replaced, not pushed, so Back does not step through keystrokes. -- */
  var typingTimer = 0;
  var TYPING_DELAY = 150;
  form.addEventListener("input", function (ev) {
    if (ev.target !== searchBox()) return;
    clearTimeout(typingTimer);
    clearTimeout(settleTimer);  // still typing: what was shown so far is not the search
    unsettled = null;
    typingTimer = setTimeout(function () {
      var value = searchBox().value;
      navigate(formUrl(/\S$/.test(value)), { replace: true, typing: true });
    }, TYPING_DELAY);
  });

  /* -- keeping the place (issue 13): the scroll position and the opened result are kept in the
   * history entry, so Back to this page (a new load when the browser did not keep it) goes back
   * to where the agent was, not to the top. -- */
  var kept = history.state || {};
  function keepPlace(ev) {
    var state = { kb: true, scrollY: window.scrollY };
    var link = ev && ev.target && ev.target.closest && ev.target.closest("a.result-link");
    var links = Array.prototype.slice.call(doc.querySelectorAll("a.result-link"));
    var current = link || (doc.activeElement && doc.activeElement.classList.contains("result-link") ? doc.activeElement : null);
    if (current) state.result = links.indexOf(current);
    history.replaceState(state, "", location.href);
  }
  doc.addEventListener("click", function (ev) {
    if (ev.target.closest && ev.target.closest("a.result-link")) keepPlace(ev);
  }, true);
  window.addEventListener("pagehide", function () { keepPlace(); });
  history.replaceState({ kb: true, scrollY: kept.scrollY, result: kept.result }, "", location.href);
  if (typeof kept.scrollY === "number") {
    window.scrollTo(0, kept.scrollY);
    var back = doc.querySelectorAll("a.result-link")[kept.result];
    if (back) back.focus({ preventScroll: true });
  }
  window.addEventListener("popstate", function () {
    // A popstate for an in-page anchor (the skip link) changes nothing we render.
    if (location.pathname + location.search === loaded) return;
    navigate(location.href, { push: false });
  });
})();

/* Suggestions under the search box and keyboard moves through the results (issue 13).
 * The box becomes an ARIA combobox whose listbox lists article titles and error codes matching
 * what is typed (GET /api/v1/suggest); arrow keys move, Enter opens a title or searches a code,
 * Escape closes.  Outside a text field, j and k move through the results and Enter opens one. */
(function () {
  "use strict";
  var doc = document;
  var box = doc.getElementById("q");
  var form = doc.getElementById("search-form");

  // -- j / k through the results --
  doc.addEventListener("keydown", function (ev) {
    if ((ev.key !== "j" && ev.key !== "k") || ev.ctrlKey || ev.metaKey || ev.altKey || isTyping(ev.target)) return;
    var links = Array.prototype.slice.call(doc.querySelectorAll("a.result-link"));
    if (!links.length) return;
    ev.preventDefault();
    var at = links.indexOf(doc.activeElement);
    var next = at < 0 ? 0 : Math.max(0, Math.min(links.length - 1, at + (ev.key === "j" ? 1 : -1)));
    doc.querySelectorAll(".result.is-current").forEach(function (li) { li.classList.remove("is-current"); });
    var li = links[next].closest(".result");
    if (li) li.classList.add("is-current");
    links[next].focus();
    links[next].scrollIntoView({ block: "nearest" });
  });

  if (!box || !form || !window.fetch) return;

  // -- the suggestions combobox --
  var list = doc.createElement("ul");
  list.id = "suggestions";
  list.className = "suggestions";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Suggestions");
  list.hidden = true;
  box.parentElement.appendChild(list);
  box.setAttribute("role", "combobox");
  box.setAttribute("aria-autocomplete", "list");
  box.setAttribute("aria-controls", "suggestions");
  box.setAttribute("aria-expanded", "false");

  var items = [];
  var active = -1;
  var timer = 0;
  var pending = null;
  var asked = 0;

  function close() {
    list.hidden = true;
    box.setAttribute("aria-expanded", "false");
    box.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function show(suggestions) {
    items = suggestions;
    list.replaceChildren();
    active = -1;
    box.removeAttribute("aria-activedescendant");
    suggestions.forEach(function (sug, i) {
      var li = doc.createElement("li");
      li.id = "suggestion-" + i;
      li.className = "suggestion-option";
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      var kind = doc.createElement("span");
      kind.className = "suggestion-kind";
      kind.textContent = sug.kind === "code" ? "Code" : "Article";
      var text = doc.createElement("span");
      text.className = sug.kind === "code" ? "suggestion-text suggestion-code" : "suggestion-text";
      text.textContent = sug.text;
      li.append(kind, text);
      li.addEventListener("mousedown", function (ev) { ev.preventDefault(); choose(i); });
      list.appendChild(li);
    });
    var open = suggestions.length > 0 && doc.activeElement === box;
    list.hidden = !open;
    box.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function highlight(i) {
    active = i;
    Array.prototype.forEach.call(list.children, function (li, n) {
      li.setAttribute("aria-selected", n === i ? "true" : "false");
    });
    if (i >= 0) {
      box.setAttribute("aria-activedescendant", "suggestion-" + i);
      list.children[i].scrollIntoView({ block: "nearest" });
    } else {
      box.removeAttribute("aria-activedescendant");
    }
  }

  function choose(i) {
    var sug = items[i];
    if (!sug) return;
    close();
    if (sug.kind === "code") {
      box.value = sug.text;
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    } else {
      // the article page's box keeps what was typed
      window.location.assign(sug.url + "?q=" + encodeURIComponent(box.value.trim()));
    }
  }

  function ask() {
    var q = box.value.trim();
    var ticket = ++asked;
    if (pending) pending.abort();
    if (!q) { show([]); return; }
    pending = window.AbortController ? new AbortController() : null;
    fetch("/api/v1/suggest?q=" + encodeURIComponent(q), { signal: pending ? pending.signal : undefined })
      .then(function (res) { return res.ok ? res.json() : { suggestions: [] }; })
      .then(function (data) { if (ticket === asked) show(data.suggestions || []); })
      .catch(function () { /* aborted or offline: the search itself still works */ });
  }

  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 150);
  });
  box.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      if (!items.length) return;
      ev.preventDefault();
      if (list.hidden) { list.hidden = false; box.setAttribute("aria-expanded", "true"); }
      var step = ev.key === "ArrowDown" ? 1 : -1;
      var next = active + step;
      highlight(next < -1 ? items.length - 1 : next >= items.length ? -1 : next);
    } else if (ev.key === "Enter" && !list.hidden && active >= 0) {
      ev.preventDefault();
      choose(active);
    } else if (ev.key === "Escape" && !list.hidden) {
      ev.preventDefault();
      close();
    } else if (ev.key === "Enter") {
      close();
    }
  });
  box.addEventListener("blur", close);
  form.addEventListener("submit", function () { clearTimeout(timer); asked++; close(); });
})();

/* Article page: copy the page's link, or its steps as plain text or markdown (the values filled
 * in are part of both). The buttons are shown only when this script runs. */
(function () {
  "use strict";
  var doc = document;

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // http on another host: the old way, through a selected textarea
    var area = doc.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    doc.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = doc.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  doc.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("button[data-copy]");
    if (!button) return;
    var kind = button.getAttribute("data-copy");
    var text = kind === "link" ? location.href : button.getAttribute("data-copy-text") || "";
    var status = button.parentElement.querySelector(".copy-status");
    copyText(text).then(function () {
      if (status) status.textContent = kind === "link" ? "Link copied." : "Steps copied.";
    }, function () {
      if (status) status.textContent = "Could not copy; select the text instead.";
    });
  });
})();
})();
