// printcore's pages work without JavaScript; this file only adds small comforts.
// It is the only script the pages load: the Content-Security-Policy allows no inline
// script, so behaviour hangs off data- attributes instead of onclick/onsubmit.
(function () {
  "use strict";
  // <form data-confirm="Question?"> or <button data-confirm=…>: ask before sending (e.g. deleting a request).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) ||
      (form && form.getAttribute && form.getAttribute("data-confirm"));
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);
  // <a data-back href="/">: go back in history when there is one, else follow the link.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-back]");
    if (link && window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });
})();

// Live updates on staff pages (<body data-live="/staff/events" data-live-filter="job:12">):
// the server streams each committed change (adapters/web/live.py); the page fetches itself
// again and swaps each [data-live-region] by id. A region holding the focused field or a
// form being filled in is left alone, so nobody loses what they are typing. The footer's
// #live-status says when the page last changed, or that the stream is down; while it is
// down the regions reload every 45 s. EventSource reconnects by itself with Last-Event-ID,
// and the server replays what was missed. Each change is also dispatched on document as a
// "printcore:change" event (detail: the change) for other scripts.
(function () {
  "use strict";
  var body = document.body;
  var url = body && body.getAttribute("data-live");
  var status = document.getElementById("live-status");
  if (!url) {
    return;
  }
  if (!window.EventSource || !window.fetch || !window.DOMParser) {
    if (status) { status.textContent = "This browser cannot update the page live; reload to see changes."; }
    return;
  }
  var filters = (body.getAttribute("data-live-filter") || "").split(",").filter(Boolean);
  var pollTimer = null;
  var pending = null;

  function say(text, down) {
    if (!status) { return; }
    status.textContent = text;
    status.classList.toggle("live-down", Boolean(down));
  }
  function clock() {
    return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function wanted(change) {
    if (!filters.length) { return true; }
    return filters.some(function (f) {
      var parts = f.split(":");
      return parts[0] === change.subject && (parts.length < 2 || String(change.subject_id) === parts[1]);
    });
  }
  document.addEventListener("input", function (event) {
    var form = event.target && event.target.form;
    if (form) { form.setAttribute("data-dirty", "1"); }
  });
  function busy(region) {
    var active = document.activeElement;
    if (active && active !== document.body && region.contains(active) &&
        /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) {
      return true;
    }
    return region.querySelector("form[data-dirty]") !== null;
  }
  function refresh() {
    pending = null;
    var regions = document.querySelectorAll("[data-live-region][id]");
    if (!regions.length) { return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Printcore-Live": "1" } })
      .then(function (response) {
        if (response.redirected && /\/staff\/login/.test(response.url)) {
          window.location.assign(response.url);
          throw new Error("logged out");
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var skipped = 0;
        regions.forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (!next) { return; }
          if (busy(region)) { skipped += 1; return; }
          region.innerHTML = next.innerHTML;
        });
        say("Live · updated " + clock() + (skipped ? " (a form you are filling in was left as it is)" : ""));
      })
      .catch(function (err) {
        if (String(err.message) !== "logged out") { say("Could not refresh the page (" + err.message + "); trying again soon.", true); }
      });
  }
  function schedule() {
    if (!pending) { pending = setTimeout(refresh, 150); }
  }
  function startPolling() {
    if (!pollTimer) { pollTimer = setInterval(refresh, 45000); }
  }
  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }
  var source = new EventSource(url);
  source.onopen = function () {
    stopPolling();
    say("Live · connected " + clock());
  };
  source.addEventListener("change", function (event) {
    var change = {};
    try { change = JSON.parse(event.data); } catch (e) { change = {}; }
    document.dispatchEvent(new CustomEvent("printcore:change", { detail: change }));
    if (wanted(change)) { schedule(); }
  });
  source.addEventListener("ended", function () {
    source.close();
    say("Your login has ended: live updates stopped. Log in again.", true);
  });
  source.onerror = function () {
    say("Live updates are down; reconnecting… (this page reloads its parts every 45 s meanwhile)", true);
    startPolling();
  };
})();
