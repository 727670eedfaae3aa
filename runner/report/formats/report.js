// mmapconf report page: filter the results table by outcome, tag, backing and text.
// The filter lives in the URL fragment (#outcome=failed&tag=sigbus&backing=tmpfs&q=text) so a
// filtered view can be linked to, and so a headless browser can be handed one.
(function () {
  "use strict";
  var byId = function (id) { return document.getElementById(id); };
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.result"));
  var fields = [["outcome", "f-outcome"], ["tag", "f-tag"], ["backing", "f-backing"], ["q", "f-text"]];

  function current() {
    return {
      outcome: byId("f-outcome").value,
      tag: byId("f-tag").value,
      backing: byId("f-backing").value,
      q: byId("f-text").value.trim().toLowerCase()
    };
  }

  function matches(row, s) {
    if (s.outcome && row.dataset.outcome !== s.outcome) return false;
    if (s.backing && row.dataset.backing !== s.backing) return false;
    if (s.tag && row.dataset.tags.split(" ").indexOf(s.tag) < 0) return false;
    if (s.q && row.dataset.text.indexOf(s.q) < 0) return false;
    return true;
  }

  function writeHash(s) {
    var p = new URLSearchParams();
    fields.forEach(function (f) { if (s[f[0]]) p.set(f[0], s[f[0]]); });
    var h = p.toString();
    try {
      history.replaceState(null, "", h ? "#" + h : location.pathname + location.search);
    } catch (e) { /* some file:// contexts refuse; the filter still works */ }
  }

  function apply() {
    var s = current();
    var shown = 0;
    rows.forEach(function (row) {
      var ok = matches(row, s);
      row.hidden = !ok;
      if (ok) shown += 1;
    });
    byId("shown").textContent = String(shown);
    byId("no-match").hidden = shown > 0;
    document.querySelectorAll(".counts button[data-outcome]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.outcome === s.outcome));
    });
    writeHash(s);
  }

  function readHash() {
    var p = new URLSearchParams(location.hash.replace(/^#/, ""));
    fields.forEach(function (f) { byId(f[1]).value = p.get(f[0]) || ""; });
  }

  fields.forEach(function (f) {
    byId(f[1]).addEventListener(f[0] === "q" ? "input" : "change", apply);
  });
  document.querySelectorAll(".counts button[data-outcome]").forEach(function (b) {
    b.addEventListener("click", function () {
      var sel = byId("f-outcome");
      sel.value = sel.value === b.dataset.outcome ? "" : b.dataset.outcome;
      apply();
    });
  });
  byId("f-reset").addEventListener("click", function () {
    fields.forEach(function (f) { byId(f[1]).value = ""; });
    apply();
  });
  window.addEventListener("hashchange", function () { readHash(); apply(); });
  readHash();
  apply();
  document.body.dataset.ready = "true";
})();
