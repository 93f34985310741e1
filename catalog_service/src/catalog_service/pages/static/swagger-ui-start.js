// Starts Swagger UI with the configuration its page carries as JSON data (not as
// script), so that the page's Content-Security-Policy can forbid inline scripts.
window.addEventListener("load", function () {
  var config = JSON.parse(document.getElementById("swagger-ui-config").textContent);
  config.dom_id = "#swagger-ui";
  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset];
  config.plugins = [SwaggerUIBundle.plugins.DownloadUrl];
  config.layout = "StandaloneLayout";
  window.ui = SwaggerUIBundle(config);
});
