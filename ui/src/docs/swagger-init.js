// Starts Swagger UI on the API docs page (/docs). It lives in a file of its own, not inline in
// the page, so the page's Content-Security-Policy can allow scripts from this origin only.
// The page says where the OpenAPI document is in data-openapi-url on #swagger-ui.
/* global SwaggerUIBundle */
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // Keeps what was entered under "Authorize" across reloads (in this browser's storage).
    persistAuthorization: true,
    // The default posts the document to an external validator: no request leaves the origin.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
