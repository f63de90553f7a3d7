// ReDoc on /redoc, served from our own host (no CDN), with a theme whose colours meet
// WCAG 2.1 AA contrast on its white and grey backgrounds.
Redoc.init("/openapi.json", {
  hideDownloadButton: false,
  theme: {
    colors: {
      primary: { main: "#1d4f91" },
      success: { main: "#1b5e20" },
      warning: { main: "#8a4b00" },
      error: { main: "#b71c1c" },
      text: { primary: "#1f1f1f", secondary: "#3d3d3d" },
      http: { get: "#1b5e20", post: "#1d4f91", put: "#6a1b9a", delete: "#b71c1c",
              patch: "#8a4b00", options: "#333333", head: "#5d1d91" },
      responses: {
        // tabTextColor: the response tabs on the dark right panel
        success: { color: "#1b5e20", tabTextColor: "#a5d6a7" },
        error: { color: "#b71c1c", tabTextColor: "#ff8a80" },
        redirect: { color: "#8a4b00", tabTextColor: "#ffcc80" },
        info: { color: "#1d4f91", tabTextColor: "#90caf9" },
      },
    },
    typography: { code: { color: "#a31515" }, links: { color: "#1d4f91" } },
    sidebar: { textColor: "#1f1f1f" },
    rightPanel: { backgroundColor: "#263238", textColor: "#ffffff" },
  },
}, document.getElementById("redoc"));
