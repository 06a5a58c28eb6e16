// cronmesh console: the live parts only. Every page works without this script; it adds
// auto-refresh of the parts marked data-refresh, the trigger preview as you type, and the
// viewer's time zone (a cookie the server reads to show times in it).
"use strict";

(function () {
  // The browser's zone, for the "your zone" times. Set once; reload so the page shows it.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var current = (document.cookie.match(/(?:^|; )cronmesh_tz=([^;]*)/) || [])[1];
    if (zone && decodeURIComponent(current || "") !== zone) {
      document.cookie = "cronmesh_tz=" + encodeURIComponent(zone) + "; path=/; SameSite=Strict; max-age=31536000";
      var stored = (document.cookie.match(/(?:^|; )cronmesh_tz=([^;]*)/) || [])[1];
      if (stored && decodeURIComponent(stored) === zone && !sessionStorage.getItem("cronmesh_tz_reloaded")) {
        sessionStorage.setItem("cronmesh_tz_reloaded", "1");
        location.reload();
        return;
      }
    }
  } catch (e) { /* no zone: times stay in UTC */ }

  function refresh(el) {
    var url = el.getAttribute("data-refresh");
    fetch(url, { credentials: "same-origin", headers: { "X-Fragment": "1" } })
      .then(function (r) {
        // Signed out meanwhile: show the sign-in page, not a page inside the page.
        if (r.redirected) { location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (text) { if (text !== null) { el.innerHTML = text; } })
      .catch(function () { /* keep what is shown; try again next time */ });
  }

  function previewOf(form) {
    var target = document.getElementById("preview");
    if (!target) { return; }
    var params = new URLSearchParams();
    ["mode", "expr", "timezone", "trigger_json", "trigger_conf", "preview_from"].forEach(function (name) {
      var field = form.elements[name];
      if (!field) { return; }
      if (field.length !== undefined && field.tagName !== "SELECT") {
        for (var i = 0; i < field.length; i++) { if (field[i].checked) { params.set(name, field[i].value); } }
      } else {
        params.set(name, field.value);
      }
    });
    fetch("/preview?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) {
        if (r.redirected) { location.reload(); return null; }
        return r.text();
      })
      .then(function (text) { if (text !== null) { target.innerHTML = text; } })
      .catch(function () { /* the server-side Preview button still works */ });
  }

  function showMode(form) {
    var checked = form.querySelector("input[name=mode]:checked");
    if (!checked) { return; }
    form.querySelectorAll("[data-mode]").forEach(function (box) {
      box.hidden = box.getAttribute("data-mode") !== checked.value;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(function (el) {
      var every = parseInt(el.getAttribute("data-every") || "3000", 10);
      setInterval(function () { refresh(el); }, every);
    });
    document.querySelectorAll("form[data-preview]").forEach(function (form) {
      var timer = null;
      var later = function () {
        clearTimeout(timer);
        timer = setTimeout(function () { previewOf(form); }, 250);
      };
      form.addEventListener("input", later);
      form.addEventListener("change", function () { showMode(form); later(); });
      showMode(form);
    });
  });
})();
