// What the vendored Swagger UI and ReDoc leave out for assistive technology, added after
// they render (they re-render as the reader opens sections, hence the observer, which watches
// added nodes only, so these attribute changes do not wake it again):
// - a select without a name gets one from its context (axe: select-name);
// - a field without a label is named after its parameter (axe: label);
// - ReDoc's side menu stays a plain nested list (axe: list, aria-required-parent);
// - headings follow one another by one level (axe: heading-order), by aria-level.
(function () {
  function nameSelects() {
    document.querySelectorAll("select:not([aria-label]):not([aria-labelledby])").forEach(function (el) {
      if (el.labels && el.labels.length) return;
      var opt = el.options[el.selectedIndex];
      el.setAttribute("aria-label", "Choose a value" + (opt ? " (now: " + opt.text + ")" : ""));
    });
  }
  // a field without a label (Swagger UI's request-body textarea, its parameter inputs) is
  // named by its parameter's name or its placeholder (axe: label)
  function nameFields() {
    document.querySelectorAll("textarea, input:not([type=hidden])").forEach(function (el) {
      if ((el.labels && el.labels.length) || el.getAttribute("aria-label")
          || el.getAttribute("aria-labelledby") || el.getAttribute("title")) return;
      var row = el.closest("tr[data-param-name]");
      var name = row ? row.getAttribute("data-param-name")
        : (el.closest(".body-param") ? "Request body" : el.getAttribute("placeholder"));
      el.setAttribute("aria-label", name || "Value");
    });
  }
  // ReDoc's side menu: its items are list items of nested lists that claim the menuitem
  // role without a menu around them, and carry an aria-label other than their text
  // (axe: aria-required-parent, list, label-content-name-mismatch); they stay list items
  function plainMenu() {
    document.querySelectorAll("[role=menuitem], li[data-item-id][aria-label], [data-item-id] li[aria-label]").forEach(function (el) {
      var parent = el.parentElement;
      el.removeAttribute("aria-label");  // its name is its text
      if (parent && /^(menu|menubar|group)$/.test(parent.getAttribute("role") || "")) return;
      el.removeAttribute("role");
    });
  }
  function levelHeadings() {
    var last = 0;
    document.querySelectorAll("h1, h2, h3, h4, h5, h6, [role=heading]").forEach(function (h) {
      var tag = /^H([1-6])$/.exec(h.tagName);
      var level = h.getAttribute("data-a11y-level")
        ? parseInt(h.getAttribute("data-a11y-level"), 10)
        : (tag ? parseInt(tag[1], 10) : parseInt(h.getAttribute("aria-level") || "2", 10));
      h.setAttribute("data-a11y-level", String(level));
      var fitted = Math.min(level, last + 1);
      if (fitted !== level) {
        h.setAttribute("role", "heading");
        h.setAttribute("aria-level", String(fitted));
      } else if (h.getAttribute("aria-level") && tag) {
        h.removeAttribute("aria-level");
        h.removeAttribute("role");
      }
      last = fitted;
    });
  }
  function fix() {
    nameSelects();
    nameFields();
    plainMenu();
    levelHeadings();
  }
  // in the observer's own callback (a microtask), so nothing reads the page in between
  new MutationObserver(fix).observe(document.body, { childList: true, subtree: true });
  fix();
})();
