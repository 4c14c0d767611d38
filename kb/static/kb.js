/* kb search page enhancements. Everything works without this file: facets are checkboxes of a
 * GET form and every state is a URL. With it, "/" focuses the search box, long facet lists can
 * be filtered, and facet clicks, chips and pagination swap the results in place (the URL is
 * pushed, so sharing and the back button still work, and the count is announced). */
(function () {
  "use strict";

  var doc = document;
  var NARROW = "(max-width: 860px)";

  function searchBox() { return doc.getElementById("q"); }

  function isTyping(el) {
    return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

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

  // Narrow a long facet list to the values containing what was typed.
  function applyFilter(input) {
    var list = doc.getElementById(input.getAttribute("data-filter-list"));
    if (!list) return;
    var needle = input.value.trim().toLowerCase();
    var shown = 0;
    list.querySelectorAll("li").forEach(function (li) {
      var hit = !needle || (li.getAttribute("data-value") || "").indexOf(needle) !== -1;
      li.hidden = !hit;
      if (hit) shown += 1;
    });
    var none = list.parentElement.querySelector(".facet-nomatch");
    if (none) none.hidden = shown > 0;
  }

  doc.addEventListener("input", function (ev) {
    if (ev.target.matches && ev.target.matches("[data-filter-list]")) applyFilter(ev.target);
  });

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
    var controller = window.AbortController ? new AbortController() : null;
    pending = controller;
    var col = doc.querySelector(".results-col");
    if (col) col.setAttribute("aria-busy", "true");
    var typed = {};
    doc.querySelectorAll("[data-filter-list]").forEach(function (i) { typed[i.id] = i.value; });

    fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin",
                 signal: controller ? controller.signal : undefined })
      .then(function (res) {
        var type = res.headers.get("content-type") || "";
        if (!res.ok || type.indexOf("text/html") === -1) throw new Error("unexpected response");
        return res.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html");
        if (!next.getElementById("content")) throw new Error("not a search page");
        swap(next);
        if (opts.push) history.pushState({ kb: true }, "", url);
        loaded = location.pathname + location.search;
        var box = searchBox();
        var nextBox = next.getElementById("q");
        if (box && nextBox && !opts.push) box.value = nextBox.value;
        showJsOnly();
        Object.keys(typed).forEach(function (id) {
          var input = doc.getElementById(id);
          if (input && typed[id]) { input.value = typed[id]; applyFilter(input); }
        });
        restoreFocus(opts);
      })
      .catch(function (err) {
        if (err && err.name === "AbortError") return;
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

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (key === "q" && !String(value).trim()) return; // an empty query is the default
      params.append(key, value);
    });
    var qs = params.toString();
    navigate(form.getAttribute("action") + (qs ? "?" + qs : ""), { push: true });
  });

  history.replaceState({ kb: true }, "", location.href);
  window.addEventListener("popstate", function () {
    // A popstate for an in-page anchor (the skip link) changes nothing we render.
    if (location.pathname + location.search === loaded) return;
    navigate(location.href, { push: false });
  });
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
