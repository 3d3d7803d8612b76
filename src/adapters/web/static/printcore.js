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
          // Keep the keyboard's place: a focused job card (j/k) is focused again after.
          var focused = document.activeElement && document.activeElement.closest &&
            region.contains(document.activeElement) ? document.activeElement.closest("[data-job]") : null;
          region.innerHTML = next.innerHTML;
          if (focused) {
            var again = region.querySelector('[data-job="' + focused.getAttribute("data-job") + '"]');
            if (again) { again.focus({ preventScroll: true }); }
          }
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

// Who am I (base.html's "You are:" form, adapters/web/identity.py): picking a name with
// the mouse sends the form at once; from the keyboard the arrow keys only move through the
// list (a change event per key would send it), and the Change button sends it.
(function () {
  "use strict";
  var select = document.querySelector("select[data-autosubmit]");
  if (!select || !select.form) { return; }
  var pointer = false;
  select.addEventListener("pointerdown", function () { pointer = true; });
  select.addEventListener("keydown", function () { pointer = false; });
  select.addEventListener("change", function () {
    if (pointer) { select.form.requestSubmit ? select.form.requestSubmit() : select.form.submit(); }
  });
})();

// Keyboard shortcuts on staff pages, listed in the <dialog id="shortcuts-help"> that "?"
// or the header's "Keyboard shortcuts (?)" button opens:
//   /  focus the search box (the dashboard's, else the header's)
//   j / k  focus the next / previous job card (Enter opens it: cards are links)
//   r  mark reviewed: on a job page, submit its review form; on the dashboard, the focused
//      card's job (a form post to /staff/jobs/{id}/review with the CSRF token and the
//      staff member chosen in the header, as the page's own forms send)
// None fires while typing in a field, inside an open dialog, or with Ctrl, Alt or Meta.
(function () {
  "use strict";
  var help = document.getElementById("shortcuts-help");
  if (!help) { return; }
  var opener = document.getElementById("shortcuts-open");
  var status = document.getElementById("shortcut-status");
  var sayTimer = null;

  function meta(name) {
    var tag = document.querySelector('meta[name="' + name + '"]');
    return tag ? tag.getAttribute("content") || "" : "";
  }
  function say(text) {
    if (!status) { return; }
    status.textContent = text;
    status.classList.add("shown");
    if (sayTimer) { clearTimeout(sayTimer); }
    sayTimer = setTimeout(function () { status.classList.remove("shown"); status.textContent = ""; }, 6000);
  }
  function openHelp() {
    if (help.open) { return; }
    if (help.showModal) { help.showModal(); } else { help.setAttribute("open", ""); }
  }
  if (opener) {
    opener.hidden = false;
    opener.addEventListener("click", openHelp);
  }
  function typing(target) {
    if (!target || !target.tagName) { return false; }
    return /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName) || target.isContentEditable;
  }
  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll(".job-card[data-job]"));
  }
  function move(step) {
    var list = cards();
    if (!list.length) { say("No job cards on this page."); return; }
    var at = list.indexOf(document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".job-card[data-job]") : null);
    var next = at < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(Math.max(at + step, 0), list.length - 1);
    list[next].focus();
    list[next].scrollIntoView({ block: "nearest" });
  }
  function chooseFirst() {
    say("Choose who you are first (You are: in the header), then press r again.");
    var who = document.getElementById("whoami");
    if (who) { who.focus(); }
  }
  function reviewCard(card) {
    var id = card.getAttribute("data-job");
    if (!card.querySelector(".badge-new")) { say("Job #" + id + " is already reviewed."); return; }
    var staff = meta("printcore-staff");
    if (!staff) { chooseFirst(); return; }
    var body = new URLSearchParams();
    body.append("csrf_token", meta("printcore-csrf"));
    body.append("staff_name", staff);
    say("Marking job #" + id + " reviewed…");
    // The same post as the job page's form; the server answers with the job page (its
    // refusal, with nothing changed, in p.error).
    fetch("/staff/jobs/" + encodeURIComponent(id) + "/review", {
      method: "POST", body: body, credentials: "same-origin"
    }).then(function (response) {
      if (response.redirected && /\/staff\/login/.test(response.url)) {
        window.location.assign(response.url);
        return null;
      }
      return response.text().then(function (html) {
        if (response.ok) {
          var badge = card.querySelector(".badge-new");
          if (badge) { badge.remove(); }
          say("Job #" + id + " marked reviewed by " + staff + ".");
          return;
        }
        var page = new DOMParser().parseFromString(html, "text/html");
        var error = page.querySelector("p.error[role=alert]");
        say("Job #" + id + " was not marked reviewed: " +
          (error ? error.textContent.trim() : "the server answered " + response.status + "."));
      });
    }).catch(function (err) {
      say("Job #" + id + " was not marked reviewed: " + err.message);
    });
  }
  function review() {
    var page = document.getElementById("review-form") ||
      document.querySelector('form[action$="/review"], form[action$="/unreview"]');
    var card = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".job-card[data-job]") : null;
    if (card) { reviewCard(card); return; }
    if (page) {
      if (/\/unreview$/.test(page.getAttribute("action") || "")) { say("This job is already reviewed."); return; }
      if (page.querySelector('select[name="staff_name"]') && !page.querySelector('select[name="staff_name"]').value) {
        chooseFirst();
        return;
      }
      if (page.requestSubmit) { page.requestSubmit(); } else { page.submit(); }
      return;
    }
    if (cards().length) { say("Move to a job card with j or k first, then press r."); }
  }
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey) { return; }
    if (typing(event.target) || help.open || document.querySelector("dialog[open]")) { return; }
    var key = event.key;
    if (key === "/") {
      var box = document.getElementById("search-q") || document.getElementById("nav-q");
      if (box) { event.preventDefault(); box.focus(); box.select(); }
    } else if (key === "?") {
      event.preventDefault();
      openHelp();
    } else if (event.shiftKey) {
      return;
    } else if (key === "j" || key === "k") {
      if (!cards().length) { return; }
      event.preventDefault();
      move(key === "j" ? 1 : -1);
    } else if (key === "r") {
      event.preventDefault();
      review();
    }
  });
})();
