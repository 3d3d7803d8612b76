// Soft locks on the job page (adapters/web/locks_api.py). Each action form sits in a
// <details class="action" data-lock-action="approve">; without JavaScript it is just the
// form. With it, opening a dialog takes the job's lock (POST /api/v1/jobs/{id}/lock with
// the session cookie and X-CSRF-Token), a heartbeat keeps it while the dialog stays
// open, and closing it, sending its form or leaving the page gives it back (fetch with
// keepalive, which, unlike sendBeacon, can carry the CSRF header). One dialog is open at
// a time. When another workstation takes the lock over, the heartbeat is refused (409)
// and the dialog says so. An open dialog's form is marked data-dirty, so the live
// updates (printcore.js) leave the actions alone while someone is at them. Lock banners
// ([data-lock-expires]) hide themselves once their time has passed.
(function () {
  "use strict";
  var section = document.getElementById("job-actions");
  if (!section || !window.fetch) { return; }
  var jobId = section.getAttribute("data-job");
  var seconds = Number(section.getAttribute("data-lock-seconds")) || 120;
  var beatMs = Math.max(5, Math.min(30, seconds / 4)) * 1000;
  var current = null; // {details, action, timer, lost}

  function csrf() {
    var input = document.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }
  function staffName(details) {
    var field = details.querySelector("[name=staff_name]");
    return (field && field.value) || section.getAttribute("data-staff-name") || "";
  }
  function call(method, body, keepalive) {
    return fetch("/api/v1/jobs/" + jobId + "/lock", {
      method: method, credentials: "same-origin", keepalive: Boolean(keepalive),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body)
    });
  }
  function note(details, text, kind) {
    var p = details.querySelector(".lock-note");
    if (!p) {
      p = document.createElement("p");
      p.className = "lock-note";
      p.setAttribute("role", "status");
      var summary = details.querySelector("summary");
      details.insertBefore(p, summary ? summary.nextSibling : details.firstChild);
    }
    p.textContent = text;
    p.setAttribute("data-kind", kind || "held");
  }
  function forms(details, dirty) {
    details.querySelectorAll("form").forEach(function (form) {
      if (dirty) { form.setAttribute("data-dirty", "1"); } else { form.removeAttribute("data-dirty"); }
    });
  }
  function stop(state) {
    if (state && state.timer) { clearInterval(state.timer); state.timer = null; }
  }
  function answer(state, response) {
    return response.json().then(function (data) {
      if (response.ok) {
        note(state.details, "You hold this job's lock: the other workstation sees that you are " +
          data.lock.doing + " it.", "held");
        return true;
      }
      if (response.status === 409 && data.lock) {
        var lost = state.held;
        note(state.details, (lost ? "You lost the lock: " : "") + data.lock.message +
          ". You can still send this form; if you both change the job, the second change is refused.",
          lost ? "lost" : "other");
        if (lost) { state.lost = true; stop(state); }
        return false;
      }
      note(state.details, (data.error && data.error.message) || ("Could not take the lock (HTTP " + response.status + ")."), "error");
      return false;
    });
  }
  function take(state) {
    var name = staffName(state.details);
    if (!name) {
      note(state.details, "Choose who you are to let the other workstation know you are at this job.", "error");
      return;
    }
    call("POST", { staff_name: name, action: state.action }).then(function (response) {
      return answer(state, response);
    }).then(function (held) {
      if (held) { state.held = true; }
    }).catch(function () {
      note(state.details, "Could not reach the server to take the lock; the form still works.", "error");
    });
  }
  function beat(state) {
    if (current !== state || state.lost) { stop(state); return; }
    if (!state.held) { take(state); return; }
    call("POST", { staff_name: staffName(state.details), action: state.action })
      .then(function (response) { return answer(state, response); })
      .catch(function () { /* the next beat tries again */ });
  }
  function release(state, keepalive) {
    stop(state);
    if (!state.held || state.lost) { return; }
    state.held = false;
    call("DELETE", { staff_name: staffName(state.details) }, keepalive).catch(function () {});
  }
  function open(details) {
    if (current && current.details === details) { return; }
    var previous = current;
    current = { details: details, action: details.getAttribute("data-lock-action"), timer: null, held: false, lost: false };
    if (previous) {
      stop(previous);
      previous.held = false; // the new take replaces it (same holder): no release race
      if (previous.details.open) { previous.details.open = false; }
    }
    forms(details, true);
    take(current);
    current.timer = setInterval(beat, beatMs, current);
  }
  function closed(details) {
    forms(details, false);
    // Let a dialog that opened at the same moment become current first.
    setTimeout(function () {
      if (current && current.details === details) {
        release(current, false);
        current = null;
      }
    }, 0);
  }
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.matches || !details.matches("details.action[data-lock-action]")) { return; }
    if (details.open) { open(details); } else { closed(details); }
  }, true);
  document.addEventListener("submit", function (event) {
    if (event.defaultPrevented || !current) { return; }
    if (current.details.contains(event.target)) {
      release(current, true);
      current = null;
    }
  });
  window.addEventListener("pagehide", function () {
    if (current) { release(current, true); current = null; }
  });
  // A name chosen in the dialog after it opened: take the lock then.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (current && !current.held && field.name === "staff_name" && current.details.contains(field)) {
      take(current);
    }
  });
  // Someone else's lock change on this job: check ours at once, not at the next beat.
  document.addEventListener("printcore:change", function (event) {
    var change = event.detail || {};
    if (current && current.held && change.subject === "job" && String(change.subject_id) === jobId &&
        /^lock/.test(change.kind || "")) {
      beat(current);
    }
  });
  // A dialog drawn open by the server (this session holds its lock): keep it alive.
  var drawnOpen = section.querySelector("details.action[data-lock-action][open]");
  if (drawnOpen) { open(drawnOpen); }
  // Lock banners hide at their expiry (the server stops drawing them then too).
  function hideExpired() {
    var now = Date.now();
    document.querySelectorAll("[data-lock-expires]").forEach(function (banner) {
      var until = Date.parse(banner.getAttribute("data-lock-expires"));
      if (!isNaN(until) && until <= now) { banner.hidden = true; }
    });
  }
  hideExpired();
  setInterval(hideExpired, 5000);
})();
