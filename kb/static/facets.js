/* kb facet sidebar (issue 13). Without this file the facets are checkboxes of the GET form.
 * With it: a facet's "Find" box and "Show more" ask the server for the facet's values
 * (GET /api/v1/facets/<name>, counts for the current search), each facet group is one tab stop
 * with the arrow keys moving inside it (roving tabindex), and on a phone the apply bar closes
 * the panel and brings the results into view. The sidebar may be swapped in place by kb.js, so
 * everything here works by event delegation and re-applies itself when the DOM changes. */
(function () {
  "use strict";

  var doc = document;
  var DEBOUNCE_MS = 150;
  var timers = {};
  var requests = {};

  function apiTemplate() {
    var facets = doc.getElementById("facets");
    return facets ? facets.getAttribute("data-facet-api") : null;
  }

  function valueItem(name, v) {
    var li = doc.createElement("li");
    li.className = "facet-value" + (v.selected ? " is-selected" : "") + (v.value === "(none)" ? " facet-none" : "");
    li.setAttribute("data-facet", name);
    li.setAttribute("data-value", v.value);
    li.setAttribute("data-count", String(v.count));
    var id = "facet-" + name + "-" + v.value.replace(/ /g, "_");
    var box = doc.createElement("input");
    box.type = "checkbox";
    box.setAttribute("form", "search-form");
    box.name = name;
    box.value = v.value;
    box.id = id;
    box.checked = !!v.selected;
    box.setAttribute("data-toggle-url", v.toggle_url);
    var label = doc.createElement("label");
    label.htmlFor = id;
    var text = doc.createElement("span");
    text.className = "facet-name";
    text.textContent = v.label || v.value;
    if (v.label && v.label !== v.value) {
      var raw = doc.createElement("span");
      raw.className = "facet-raw";
      raw.textContent = v.value;
      text.appendChild(raw);
    }
    var count = doc.createElement("span");
    count.className = "count";
    count.textContent = Number(v.count).toLocaleString("en-US");
    label.appendChild(text);
    label.appendChild(count);
    li.appendChild(box);
    li.appendChild(label);
    return li;
  }

  // Replace a facet's list with what the server found for ``prefix`` ("" with a large limit:
  // every value, for "Show more").
  function load(name, prefix, limit) {
    var template = apiTemplate();
    var group = doc.getElementById("facet-" + name);
    var list = doc.getElementById("facet-list-" + name);
    if (!template || !group || !list || !window.fetch) return;
    var url = template.replace("{name}", encodeURIComponent(name));
    url += (url.indexOf("?") === -1 ? "?" : "&") + "prefix=" + encodeURIComponent(prefix) + "&limit=" + limit;
    if (requests[name]) requests[name].abort();
    var controller = window.AbortController ? new AbortController() : null;
    requests[name] = controller;
    if (!list.hasAttribute("data-original")) list.setAttribute("data-original", list.innerHTML);
    fetch(url, { headers: { Accept: "application/json" }, signal: controller ? controller.signal : undefined })
      .then(function (res) { if (!res.ok) throw new Error("facet values: " + res.status); return res.json(); })
      .then(function (data) {
        if (requests[name] !== controller) return; // a newer request answers instead
        var items = data.values.map(function (v) { return valueItem(name, v); });
        list.replaceChildren.apply(list, items);
        list.setAttribute("data-search", prefix);
        var none = group.querySelector(".facet-nomatch");
        if (none) none.hidden = items.length > 0;
        var more = group.querySelector("[data-facet-more]");
        if (more) more.hidden = !prefix ? true : more.hidden;
        rove(list);
      })
      .catch(function (err) {
        if (err && err.name === "AbortError") return;
        var none = group.querySelector(".facet-nomatch");
        if (none) { none.textContent = "Could not load the values; try again."; none.hidden = false; }
      });
  }

  function restore(name) {
    var list = doc.getElementById("facet-list-" + name);
    var group = doc.getElementById("facet-" + name);
    if (!list || !list.hasAttribute("data-original")) return;
    if (requests[name]) requests[name].abort();
    requests[name] = null;
    list.innerHTML = list.getAttribute("data-original");
    list.removeAttribute("data-search");
    var none = group && group.querySelector(".facet-nomatch");
    if (none) none.hidden = true;
    rove(list);
  }

  doc.addEventListener("input", function (ev) {
    var input = ev.target;
    if (!input.matches || !input.matches("[data-facet-search]")) return;
    var name = input.getAttribute("data-facet-search");
    clearTimeout(timers[name]);
    timers[name] = setTimeout(function () {
      var typed = input.value.trim();
      if (typed) load(name, typed, 100); else restore(name);
    }, DEBOUNCE_MS);
  });

  doc.addEventListener("click", function (ev) {
    var more = ev.target.closest && ev.target.closest("[data-facet-more]");
    if (more) {
      load(more.getAttribute("data-facet-more"), "", 1000);
      more.hidden = true;
      return;
    }
    var apply = ev.target.closest && ev.target.closest("[data-apply-filters]");
    if (apply) {
      var filters = doc.getElementById("filters");
      if (filters) filters.open = false;
      var col = doc.querySelector(".results-col") || doc.getElementById("results");
      if (col) col.scrollIntoView({ block: "start" });
      var results = doc.getElementById("results");
      if (results) results.focus({ preventScroll: true });
    }
  });

  // -- one tab stop per facet group, arrow keys inside it ------------------------------------

  function boxes(list) {
    return Array.prototype.slice.call(list.querySelectorAll("input[type=checkbox]"));
  }

  function rove(list, current) {
    var all = boxes(list);
    if (!all.length) return;
    if (!current || all.indexOf(current) === -1) {
      current = all.filter(function (b) { return b.tabIndex === 0 && b.hasAttribute("data-roving"); })[0] ||
                all.filter(function (b) { return b.checked; })[0] || all[0];
    }
    all.forEach(function (b) { b.tabIndex = b === current ? 0 : -1; b.setAttribute("data-roving", ""); });
  }

  doc.addEventListener("keydown", function (ev) {
    var box = ev.target;
    if (!box.matches || !box.matches(".facet-list input[type=checkbox]")) return;
    var all = boxes(box.closest(".facet-list"));
    var i = all.indexOf(box);
    var next = null;
    if (ev.key === "ArrowDown" || ev.key === "ArrowRight") next = all[Math.min(i + 1, all.length - 1)];
    else if (ev.key === "ArrowUp" || ev.key === "ArrowLeft") next = all[Math.max(i - 1, 0)];
    else if (ev.key === "Home") next = all[0];
    else if (ev.key === "End") next = all[all.length - 1];
    if (!next) return;
    ev.preventDefault();
    rove(box.closest(".facet-list"), next);
    next.focus();
  });

  doc.addEventListener("focusin", function (ev) {
    var box = ev.target;
    if (box.matches && box.matches(".facet-list input[type=checkbox]")) rove(box.closest(".facet-list"), box);
  });

  // -- (re)apply after the sidebar is rendered or swapped -------------------------------------

  function setUp() {
    doc.querySelectorAll(".facet-list").forEach(function (list) { rove(list); });
    // shown once per rendering: a "Show more" hidden after use stays hidden
    doc.querySelectorAll("#facets [data-js-only]:not([data-shown])").forEach(function (el) {
      el.hidden = false;
      el.setAttribute("data-shown", "");
    });
    doc.querySelectorAll("#facets [data-nojs-note]").forEach(function (el) { el.hidden = true; });
  }

  function start() {
    setUp();
    var content = doc.getElementById("content") || doc.body;
    if (!window.MutationObserver) return;
    var queued = false;
    new MutationObserver(function () {
      if (queued) return;
      queued = true;
      // once per batch of changes; setUp's own attribute changes are not observed
      Promise.resolve().then(function () { queued = false; setUp(); });
    }).observe(content, { childList: true, subtree: true });
  }

  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", start); else start();
})();
