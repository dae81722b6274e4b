// Before the first paint: apply a persisted light/dark override (no flash of the wrong theme).
try {
  var theme = JSON.parse(localStorage.getItem("sdrest.theme") || '"system"');
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
} catch (e) { /* storage disabled: follow the system */ }
