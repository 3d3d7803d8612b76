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
