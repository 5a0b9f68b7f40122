// rftkit dashboard: live parts of a job page. A server-sent events stream says when the job has
// changed; the parts that listen for "rft-update" (htmx) then fetch themselves again.
(function () {
  "use strict";
  function connect(el) {
    var source = new EventSource(el.getAttribute("data-stream"));
    var refresh = function () { document.body.dispatchEvent(new CustomEvent("rft-update")); };
    source.addEventListener("update", refresh);
    source.addEventListener("done", function () { refresh(); source.close(); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-stream]").forEach(connect);
  });
})();
