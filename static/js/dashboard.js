/* ShelfSense store dashboard: the live socket (/ws/dashboard/) and the charts.
   Messages: snapshot, counters {events_today}, training.started / training.progress /
   training.finished (see below), notification {id, title, body, link, severity}. Reconnects with backoff; a 4403
   close (not a member) is final. */
(function () {
  "use strict";

  var liveDot = document.getElementById("live-state");
  var liveLabel = document.getElementById("live-label");

  function setLive(state, text) {
    if (liveDot) liveDot.setAttribute("data-state", state);
    if (liveLabel) liveLabel.textContent = text;
  }

  function renderCounters(counts) {
    document.querySelectorAll("[data-counter]").forEach(function (node) {
      var value = counts[node.getAttribute("data-counter")] || 0;
      if (node.textContent !== String(value)) node.textContent = String(value);
    });
  }

  // Training messages (apps/recommendations): training.started {model_version, number},
  // training.progress {model_version, number, stage, percent}, training.finished
  // {model_version, number, status: active|ready|failed, note}.
  var STAGES = { reading: "Reading events", saving: "Saving the model" };

  function trainingBar() { return document.getElementById("training-progress"); }

  function followsVersion(msg) {
    var bar = trainingBar();
    if (!bar) return false;
    var wanted = bar.getAttribute("data-training-progress");
    if (!wanted) {
      bar.setAttribute("data-training-progress", String(msg.model_version));
      return true;
    }
    return String(wanted) === String(msg.model_version);
  }

  function showTraining(number) {
    var box = document.getElementById("training-box");
    if (box) { box.classList.remove("hidden"); box.removeAttribute("data-state"); }
    var label = document.getElementById("training-label");
    if (label && number) label.textContent = "Training v" + number;
    var button = document.getElementById("train-button");
    if (button) button.disabled = true;
  }

  function setTrainingStatus(text, status) {
    var node = document.getElementById("training-status");
    if (!node) return;
    node.textContent = text;
    node.setAttribute("data-status", status);
  }

  function trainingStarted(msg) {
    var bar = trainingBar();
    if (bar && !bar.getAttribute("data-training-progress")) {
      bar.setAttribute("data-training-progress", String(msg.model_version));
    }
    if (!followsVersion(msg)) return;
    showTraining(msg.number);
    setTrainingStatus("Queued…", "training");
  }

  function trainingProgress(msg) {
    var percent = Math.max(0, Math.min(100, Math.round(msg.percent || 0)));
    var overview = document.getElementById("training-live");
    var overviewBar = document.getElementById("training-progress-overview");
    if (overview && overviewBar) { overview.classList.remove("hidden"); overviewBar.value = percent; }
    if (!followsVersion(msg)) return;
    showTraining(msg.number);
    trainingBar().value = percent;
    var stage = STAGES[msg.stage] || (msg.stage ? msg.stage.charAt(0).toUpperCase() + msg.stage.slice(1) : "Training");
    setTrainingStatus(stage + " · " + percent + "%", "training");
  }

  function trainingFinished(msg) {
    var overview = document.getElementById("training-live");
    if (overview) overview.classList.add("hidden");
    if (!followsVersion(msg)) return;
    showTraining(msg.number);
    var failed = msg.status === "failed";
    var bar = trainingBar();
    if (!failed) bar.value = 100;
    var text = failed
      ? "Failed: " + (msg.note || "see the version's error")
      : "Done · 100% · v" + msg.number + (msg.status === "active" ? " is now active." : " is ready. " + (msg.note || ""));
    setTrainingStatus(text, failed ? "failed" : "done");
    var box = document.getElementById("training-box");
    if (box) box.setAttribute("data-state", failed ? "failed" : "done");
    var button = document.getElementById("train-button");
    if (button) button.disabled = false;
    refreshFromServer();
  }

  // Parts of the page that depend on the versions (`data-refresh-on-training="name"`) are
  // re-read from the server once a training ends, so the table is never left stale; the link
  // stays as the fallback when that fetch fails.
  function refreshFromServer() {
    var parts = document.querySelectorAll("[data-refresh-on-training]");
    var refresh = document.getElementById("training-refresh");
    if (!parts.length) return;
    if (!window.fetch || !window.DOMParser) { if (refresh) refresh.classList.remove("hidden"); return; }
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { if (!response.ok) throw new Error(response.status); return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        parts.forEach(function (part) {
          var name = part.getAttribute("data-refresh-on-training");
          var replacement = fresh.querySelector('[data-refresh-on-training="' + name + '"]');
          if (replacement) part.replaceWith(document.importNode(replacement, true));
        });
      })
      .catch(function () { if (refresh) refresh.classList.remove("hidden"); });
  }

  // "Train now" without leaving the page: the answer names the version whose progress the
  // socket then reports. Without JavaScript the form posts and the page reloads.
  var trainForm = document.getElementById("train-form");
  if (trainForm && window.fetch) {
    trainForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = document.getElementById("train-button");
      var error = document.getElementById("training-error");
      if (button) button.disabled = true;
      if (error) error.classList.add("hidden");
      fetch(trainForm.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": trainForm.querySelector("[name=csrfmiddlewaretoken]").value },
      }).then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === -1) {
          throw new Error("Training could not start (HTTP " + response.status + ").");
        }
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (result) {
        if (!result.ok) throw new Error((result.body.error && result.body.error.message) || "Training could not start.");
        var bar = trainingBar();
        var version = String(result.body.model_version);
        // The socket may have reported this version already (a fast worker): keep its state.
        if (!bar || bar.getAttribute("data-training-progress") === version) return;
        bar.setAttribute("data-training-progress", version);
        bar.value = 0;
        showTraining(result.body.number);
        setTrainingStatus("Queued…", "training");
      }).catch(function (err) {
        if (button) button.disabled = false;
        if (error) { error.textContent = err.message; error.classList.remove("hidden"); }
      });
    });
  }

  function toast(msg) {
    var holder = document.getElementById("toasts");
    if (!holder) return;
    var node = document.createElement("div");
    node.className = "toast";
    node.setAttribute("role", "status");
    var title = document.createElement("strong");
    title.textContent = msg.title;
    node.appendChild(title);
    if (msg.body) {
      var body = document.createElement("div");
      body.textContent = msg.body;
      node.appendChild(body);
    }
    if (msg.link) {
      var link = document.createElement("a");
      link.href = msg.link;
      link.textContent = "Open";
      node.appendChild(link);
    }
    holder.appendChild(node);
    setTimeout(function () { node.remove(); }, 8000);
    var badge = document.getElementById("unread-count");
    if (badge) {
      var count = (parseInt(badge.textContent, 10) || 0) + 1;
      badge.textContent = String(count);
      badge.setAttribute("aria-label", count + " unread");
      badge.classList.remove("hidden");
    }
  }

  var handlers = {
    snapshot: function () {},
    counters: function (msg) { renderCounters(msg.events_today || {}); },
    "training.started": trainingStarted,
    "training.progress": trainingProgress,
    "training.finished": trainingFinished,
    notification: toast,
  };

  var retry = 0;
  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/dashboard/");
    socket.onopen = function () { retry = 0; setLive("live", "Live"); };
    socket.onmessage = function (event) {
      var msg = JSON.parse(event.data);
      var handler = handlers[msg.type];
      if (handler) handler(msg);
      document.dispatchEvent(new CustomEvent("shelfsense:live", { detail: msg }));
    };
    socket.onclose = function (event) {
      if (event.code === 4403 || event.code === 4404) {
        setLive("offline", "Live updates are not available for your account here.");
        return;
      }
      setLive("offline", "Reconnecting…");
      retry = Math.min(retry + 1, 6);
      setTimeout(connect, 500 * Math.pow(2, retry));
    };
  }
  window.ShelfSenseLive = { connect: connect };
  connect();

  // Charts: every <canvas id="X"> with a JSON <script id="X-data"> block.
  if (window.Chart) {
    var palette = ["#0b57d0", "#b42318", "#116329", "#7a4d00", "#6e40c9", "#0a7a8a"];
    var eventsData = document.getElementById("events-chart-data");
    if (eventsData) {
      var data = JSON.parse(eventsData.textContent);
      new Chart(document.getElementById("events-chart"), {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: Object.keys(data.series).map(function (type, i) {
            return { label: type, data: data.series[type], backgroundColor: palette[i % palette.length] };
          }),
        },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
      });
    }
    var ctrData = document.getElementById("ctr-chart-data");
    if (ctrData) {
      var ctr = JSON.parse(ctrData.textContent);
      new Chart(document.getElementById("ctr-chart"), {
        type: "line",
        data: { labels: ctr.labels, datasets: [{ label: "CTR", data: ctr.ctr.map(function (v) { return v === null ? null : v * 100; }), borderColor: palette[0], spanGaps: true }] },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
          scales: { y: { beginAtZero: true, ticks: { callback: function (v) { return v + "%"; } } } } },
      });
    }
    var versionsData = document.getElementById("versions-chart-data");
    if (versionsData) {
      var versions = JSON.parse(versionsData.textContent);
      new Chart(document.getElementById("versions-chart"), {
        type: "bar",
        data: { labels: versions.labels, datasets: versions.datasets.map(function (set, i) {
          return { label: set.label, data: set.data, backgroundColor: palette[i % palette.length] };
        }) },
        options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } },
      });
    }
  }
  // Copy buttons: `data-copy="<id>"` copies that element's text (the onboarding snippets).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    });
  });
})();
