// Starts Swagger UI on /docs with the app's own OpenAPI document (no inline script: CSP).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    tryItOutEnabled: false,
    validatorUrl: null,
  });
})();
