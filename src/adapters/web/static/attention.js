// attention.js: a short tone on open staff pages when a new print request arrives.
//
// printcore.js dispatches each live change (GET /staff/events) on document as a
// "printcore:change" event whose detail is {id, subject, subject_id, kind, at, to_status};
// a change with subject "job" and kind "submit" is a new upload. The tone is a WebAudio
// beep pair (no sound file). Browsers only let a page play sound once the user has
// interacted with it, so the sound is off until the first click or key press on the page
// (the AudioContext is created and resumed then), and the toggle says so.
//
// The toggle (a button with aria-pressed, inserted into <span id="attention-controls"> in
// the header) mutes and unmutes; the choice is remembered per browser in localStorage
// ("printcore.sound": "on" or "off"; on by default) and followed by the browser's other
// open tabs. Several uploads within 1.5 s make one tone.
//
// For tests and the curious: window.printcoreSounds counts the tones started, mirrored on
// <body data-sounds-played>.
(function () {
  "use strict";
  var slot = document.getElementById("attention-controls");
  var body = document.body;
  if (!slot || !body || !body.hasAttribute("data-live")) {
    return;
  }
  var KEY = "printcore.sound";
  var AudioCtor = window.AudioContext || window.webkitAudioContext;
  var muted = read() === "off";
  var unlocked = false;
  var audio = null;
  var lastTone = 0;
  window.printcoreSounds = 0;

  function read() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function write(value) {
    try { window.localStorage.setItem(KEY, value); } catch (e) { /* private mode: this page only */ }
  }

  var button = document.createElement("button");
  button.type = "button";
  button.id = "sound-toggle";
  button.className = "sound-toggle";
  button.textContent = "Sound for new uploads";
  button.setAttribute("aria-describedby", "sound-state");
  var state = document.createElement("span");
  state.id = "sound-state";
  state.className = "sound-state";
  state.setAttribute("aria-live", "polite");
  slot.appendChild(button);
  slot.appendChild(state);

  function show() {
    button.setAttribute("aria-pressed", muted ? "false" : "true");
    if (!AudioCtor) {
      state.textContent = "this browser cannot play sounds";
    } else if (muted) {
      state.textContent = "muted";
    } else if (!unlocked) {
      state.textContent = "on after your first click or key press on this page";
    } else {
      state.textContent = "on";
    }
  }

  function unlock() {
    if (unlocked) { return; }
    unlocked = true;
    document.removeEventListener("click", unlock, true);
    document.removeEventListener("keydown", unlock, true);
    if (AudioCtor) {
      try {
        audio = new AudioCtor();
        if (audio.state === "suspended" && audio.resume) { audio.resume(); }
      } catch (e) {
        audio = null;
        AudioCtor = null;
      }
    }
    show();
  }
  document.addEventListener("click", unlock, true);
  document.addEventListener("keydown", unlock, true);

  button.addEventListener("click", function () {
    muted = !muted;
    write(muted ? "off" : "on");
    show();
  });
  window.addEventListener("storage", function (event) {
    if (event.key === KEY) {
      muted = event.newValue === "off";
      show();
    }
  });

  function beep(at, frequency) {
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(frequency, at);
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start(at);
    osc.stop(at + 0.2);
  }

  function tone() {
    if (muted || !unlocked || !audio) { return; }
    var now = Date.now();
    if (now - lastTone < 1500) { return; }
    lastTone = now;
    try {
      if (audio.state === "suspended" && audio.resume) { audio.resume(); }
      var t = audio.currentTime + 0.01;
      beep(t, 880);
      beep(t + 0.22, 1320);
    } catch (e) {
      return;
    }
    window.printcoreSounds += 1;
    body.setAttribute("data-sounds-played", String(window.printcoreSounds));
  }

  document.addEventListener("printcore:change", function (event) {
    var change = event.detail || {};
    if (change.subject === "job" && change.kind === "submit") { tone(); }
  });
  show();
})();
