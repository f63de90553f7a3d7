// Swagger UI on /docs, served from our own host (no CDN). deepLinking is off: with it, each
// operation's summary button holds a link, a focusable element inside a button
// (axe: nested-interactive).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: false,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
