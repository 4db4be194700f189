// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // Print buttons are shown only where they can work.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  // Copy buttons (the numeric code): shown only where the browser can copy.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.querySelector(button.getAttribute("data-copy"));
      var status = button.parentNode.querySelector(".copy-status");
      navigator.clipboard.writeText(source.textContent.replace(/\s+/g, "")).then(function () {
        if (status) { status.textContent = button.getAttribute("data-copied"); }
      });
    });
  });
  // The staff menu: one group open at a time; Escape or a click elsewhere closes it.
  var groups = document.querySelectorAll(".staff-nav details");
  var closeAll = function (except) {
    groups.forEach(function (group) { if (group !== except) { group.open = false; } });
  };
  groups.forEach(function (group) {
    group.addEventListener("toggle", function () { if (group.open) { closeAll(group); } });
    group.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && group.open) {
        group.open = false;
        group.querySelector("summary").focus();
      }
    });
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest || !event.target.closest(".staff-nav details")) { closeAll(null); }
  });
  // An error summary takes the focus, so screen readers and keyboards start there.
  var summary = document.querySelector("[data-focus]");
  if (summary) { summary.focus(); }
  // A remote open: show what the locker reports without reloading the page.
  var box = document.querySelector("[data-command-status]");
  if (box) {
    document.querySelectorAll(".no-js-only").forEach(function (el) { el.hidden = true; });
    var url = box.getAttribute("data-command-status");
    var deadline = Date.now() + 5 * 60 * 1000;
    var poll = function () {
      if (box.getAttribute("data-final") === "yes" || Date.now() > deadline) { return; }
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (view) {
          if (view) {
            var text = box.querySelector(".status-text");
            text.className = "status-text state-" + view.state;
            text.querySelector("strong").textContent = view.text;
            box.querySelector(".status-detail").textContent = view.detail;
            box.setAttribute("data-final", view.final ? "yes" : "no");
          }
          setTimeout(poll, 1000);
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 500);
  }
})();
