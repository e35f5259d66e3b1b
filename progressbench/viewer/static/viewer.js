// The live run page: poll the run's version and, when it changes, swap in the page's
// freshly rendered content (no reload). Polling stops once the run is no longer running.
(function () {
  "use strict";
  var main = document.getElementById("content");
  if (!main || !main.dataset.live) {
    return;
  }
  var every = Number(main.dataset.every || 2000);
  function poll() {
    fetch(main.dataset.live, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) {
          return true;
        }
        var running = state.status === "running";
        if (state.version === main.dataset.version) {
          return running;
        }
        return fetch(location.pathname + "?part=content", { cache: "no-store", credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html !== null) {
              main.innerHTML = html;  // rendered and escaped by the server
              main.dataset.version = state.version;
              main.dataset.updates = String(Number(main.dataset.updates || 0) + 1);
            }
            return running;
          });
      })
      .catch(function () { return true; })
      .then(function (again) {
        if (again) {
          setTimeout(poll, every);
        } else {
          delete main.dataset.live;
        }
      });
  }
  setTimeout(poll, every);
})();
