/* Batch jobs page: live progress from `batch.progress` messages on the store's socket
   (dashboard.js re-dispatches every message as a `shelfsense:live` event). A job that finishes
   reloads the page once, which brings its download link or its error. */
(function () {
  "use strict";
  var labels = { queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled" };
  var finished = { succeeded: true, failed: true, cancelled: true };
  document.addEventListener("shelfsense:live", function (event) {
    var msg = event.detail;
    if (!msg || msg.type !== "batch.progress") return;
    var row = document.querySelector('[data-batch-job="' + msg.job + '"]');
    if (!row) {
      window.location.reload();
      return;
    }
    var bar = row.querySelector("[data-batch-progress]");
    bar.max = Math.max(msg.total, 1);
    bar.value = msg.done;
    row.querySelector("[data-batch-count]").textContent = msg.done.toLocaleString() + " / " + msg.total.toLocaleString();
    row.querySelector("[data-batch-failures]").textContent = msg.failures.toLocaleString();
    var status = row.querySelector("[data-batch-status]");
    if (status.textContent !== labels[msg.status] && finished[msg.status]) {
      window.location.reload();
      return;
    }
    status.textContent = labels[msg.status] || msg.status;
  });
})();
