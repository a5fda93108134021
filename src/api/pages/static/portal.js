// The portal's print button: the proof of coverage on paper (the print stylesheet hides forms).
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
