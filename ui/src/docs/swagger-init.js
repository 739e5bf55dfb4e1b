// Starts Swagger UI on the API docs page (/docs). It lives in a file of its own, not inline in
// the page, so the page's Content-Security-Policy can allow scripts from this origin only.
// The page says where the OpenAPI document is in data-openapi-url on #swagger-ui.
/* global SwaggerUIBundle */
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    // The plain layout: the standalone one adds a bar for exploring other documents' URLs.
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // What is entered under "Authorize" stays in this page's memory only. Persisting it would
    // write the password of the password flow, the access and refresh tokens and API keys in
    // clear to localStorage, where they outlive the tab and the session.
    persistAuthorization: false,
    // The default posts the document to an external validator: no request leaves the origin.
    validatorUrl: null,
  });
});
