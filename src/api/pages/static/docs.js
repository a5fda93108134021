// Starts Swagger UI on /docs with the app's own OpenAPI document (no inline script: CSP).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    // Deep links put a link inside each operation's toggle button (axe: nested-interactive).
    deepLinking: false,
    tryItOutEnabled: false,
    validatorUrl: null,
    onComplete: function () {
      var servers = document.getElementById("servers");
      if (servers) servers.setAttribute("aria-label", "Server");
    },
  });
})();
