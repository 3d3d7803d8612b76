// costs.js: live cost figures on the staff forms (issue 12), from GET /api/v1/pricing/quote.
//
// Contract (any form on a staff page):
//   <input data-cost-input data-print-method="filament" [data-quote-cents="1000"]>
//       the weight in grams; typing updates, debounced, the form's
//   <... data-cost-output [data-cost-label="Cost at this weight"]>
//       with the cost as money ("Cost at this weight: $1.25 (the minimum charge).").
//   With data-quote-cents (the quote the student confirmed) the output gives the amount due
//   at pickup under the lab's policy and says whether it is above the quote; the form's
//   [data-override] block (the override reason, "charge the quote instead") is then shown
//   and its fields enabled, and hidden and disabled otherwise. A checked
//   [name="charge_quote"] box in the form makes the amount due the quote.
// The server renders the same figure for the value it shows, and its 422 refuses a charge
// above the quote without a reason, so nothing depends on this script.
(function () {
  "use strict";
  if (!window.fetch || !document.querySelector) { return; }
  var DELAY = 250;
  var ENDPOINT = "/api/v1/pricing/quote";

  function money(cents) {
    var whole = Math.floor(cents / 100).toLocaleString("en-US");
    var rest = String(cents % 100);
    return "$" + whole + "." + (rest.length < 2 ? "0" + rest : rest);
  }
  function formOf(input) {
    return input.form || input.closest("form");
  }
  function outputOf(input) {
    var form = formOf(input);
    return form ? form.querySelector("[data-cost-output]") : null;
  }
  function quoteOf(input) {
    var raw = input.getAttribute("data-quote-cents");
    if (raw === null || raw === "" || !/^\d+$/.test(raw)) { return null; }
    return parseInt(raw, 10);
  }
  // The output's content, built from nodes (never innerHTML): parts are strings, or
  // {strong: text} for the figure.
  function write(output, parts, state) {
    while (output.firstChild) { output.removeChild(output.firstChild); }
    parts.forEach(function (part) {
      if (typeof part === "string") {
        output.appendChild(document.createTextNode(part));
      } else {
        var strong = document.createElement("strong");
        strong.textContent = part.strong;
        output.appendChild(strong);
      }
    });
    output.setAttribute("data-cost-state", state);
  }
  function setOverride(input, shown) {
    var form = formOf(input);
    if (!form) { return; }
    var output = outputOf(input);
    if (output) {
      output.setAttribute("data-above-quote", shown ? "true" : "false");
      output.classList.toggle("above-quote", shown);
    }
    form.querySelectorAll("[data-override]").forEach(function (block) {
      // A block the server marked with an error stays open: its message must be seen.
      var open = shown || block.hasAttribute("data-override-error");
      block.hidden = !open;
      block.querySelectorAll("input, select, textarea").forEach(function (field) {
        field.disabled = !open;
      });
    });
  }
  function chargingQuote(input) {
    var form = formOf(input);
    var box = form && form.querySelector('[name="charge_quote"]');
    return Boolean(box && box.checked && !box.disabled);
  }

  function show(input, data) {
    var output = outputOf(input);
    var quote = quoteOf(input);
    if (quote === null) {
      if (!output) { return; }
      var label = output.getAttribute("data-cost-label") || "Cost at this weight";
      write(output, [label + ": ", { strong: data.cost },
        data.minimum_applies ? " (the minimum charge)." : "."], "ok");
      return;
    }
    var above = Boolean(data.above_quote);
    setOverride(input, above || chargingQuote(input));
    if (!output) { return; }
    if (chargingQuote(input)) {
      write(output, ["Amount due: ", { strong: money(quote) },
        " (the confirmed quote; the weighed " + data.grams + " g come to " + data.cost + ")."],
        "quote");
      return;
    }
    var parts = ["Amount due for " + data.grams + " g: ", { strong: data.charge }];
    if (data.charge_cents !== data.cost_cents) {
      parts.push(" (the weighed amount is " + data.cost + ").");
    } else {
      parts.push(data.minimum_applies ? " (the minimum charge)." : ".");
    }
    if (above) {
      parts.push(" This is above the confirmed quote of " + money(quote) +
        ": give a reason below, or charge the quote.");
    }
    write(output, parts, above ? "above" : "ok");
  }
  function problem(input, text) {
    var output = outputOf(input);
    if (output) { write(output, [text], "invalid"); }
    if (quoteOf(input) !== null) { setOverride(input, chargingQuote(input)); }
  }

  var timers = new WeakMap();
  var latest = new WeakMap();
  function update(input) {
    var grams = String(input.value || "").trim();
    var method = input.getAttribute("data-print-method") || "";
    if (!grams) {
      problem(input, quoteOf(input) === null ? "Enter the weight in grams to see the cost."
        : "Enter the weighed grams to see the amount due.");
      return;
    }
    var query = "print_method=" + encodeURIComponent(method) + "&grams=" + encodeURIComponent(grams);
    var quote = quoteOf(input);
    if (quote !== null) { query += "&quoted_cents=" + quote; }
    var ticket = (latest.get(input) || 0) + 1;
    latest.set(input, ticket);
    fetch(ENDPOINT + "?" + query, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { status: response.status, body: body }; });
      })
      .then(function (answer) {
        if (latest.get(input) !== ticket) { return; }  // a newer keystroke won
        if (answer.status === 200) {
          show(input, answer.body);
        } else {
          var err = answer.body && answer.body.error;
          var text = err && err.fields && (err.fields.grams || err.fields.print_method);
          problem(input, text || (err && err.message) || "Cannot work out the cost.");
        }
      })
      .catch(function () {
        if (latest.get(input) !== ticket) { return; }
        var output = outputOf(input);
        if (output) { output.setAttribute("data-cost-state", "offline"); }
      });
  }
  function later(input) {
    clearTimeout(timers.get(input));
    timers.set(input, setTimeout(function () { update(input); }, DELAY));
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target && target.matches && target.matches("[data-cost-input]")) { later(target); }
  });
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!target || !target.matches) { return; }
    if (target.matches("[data-cost-input]")) { later(target); }
    if (target.matches('[name="charge_quote"]')) {
      var form = formOf(target);
      var input = form && form.querySelector("[data-cost-input]");
      if (input) { update(input); }
    }
  });

  // Forms on the page now, and those a live update swaps in: the override block starts as
  // the server said (data-above-quote on the output), then follows the typed grams.
  function prepare(root) {
    root.querySelectorAll("[data-cost-input]:not([data-cost-ready])").forEach(function (input) {
      input.setAttribute("data-cost-ready", "1");
      if (quoteOf(input) !== null) {
        var output = outputOf(input);
        var above = output && output.getAttribute("data-above-quote") === "true";
        setOverride(input, above || chargingQuote(input));
      }
    });
  }
  function start() {
    prepare(document);
    if (window.MutationObserver) {
      new MutationObserver(function () { prepare(document); })
        .observe(document.body, { childList: true, subtree: true });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
