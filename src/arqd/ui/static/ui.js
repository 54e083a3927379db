// arqd dashboard: times in the viewer's zone (UTC on hover), and pages kept live by the
// WebSocket /ui/events (resumed with the last event id on reconnect). No polling.
"use strict";
(function () {
  const MARKS = { scheduled: "◷", queued: "◌", active: "▶", succeeded: "✓", failed: "✕", cancelled: "⊘", expired: "⊖" };
  const FINISHED = new Set(["succeeded", "failed", "cancelled", "expired"]);
  const COUNTED = ["queued", "scheduled", "active", "succeeded", "failed", "cancelled", "expired"];
  const SHOWN = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" };

  function localize(el) {
    const when = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) return;
    el.textContent = when.toLocaleString(undefined, SHOWN);
    el.title = when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function badge(status) {
    const span = document.createElement("span");
    span.className = "badge s-" + status;
    span.dataset.status = status;
    const mark = document.createElement("span");
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = MARKS[status] || "•";
    span.append(mark, " " + status.replace("_", " "));
    return span;
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
      if (seconds >= size) return Math.round(seconds / size) + " " + unit;
    }
    return Math.round(seconds) + " s";
  }

  function queueRow(name) {
    const row = document.createElement("tr");
    row.dataset.queue = name;
    const head = document.createElement("th");
    head.scope = "row";
    const link = document.createElement("a");
    link.href = "/ui/queues/" + encodeURIComponent(name);
    link.textContent = name;
    head.append(link);
    row.append(head);
    for (const status of COUNTED) {
      const cell = document.createElement("td");
      cell.className = "num";
      const count = document.createElement("a");
      count.href = link.href + "?status=" + status;
      count.dataset.count = status;
      cell.append(count);
      row.append(cell);
    }
    for (const key of ["held", "oldest_queued_age_seconds"]) {
      const cell = document.createElement("td");
      cell.className = "num";
      cell.dataset.count = key;
      row.append(cell);
    }
    const chart = document.createElement("td");  // filled when its tasks finish
    chart.className = "throughput";
    chart.dataset.chart = name;
    row.append(chart);
    return row;
  }

  function statsScope(name) {
    const table = document.querySelector("#queues tbody");
    if (table) {
      let row = table.querySelector(`tr[data-queue="${CSS.escape(name)}"]`);
      if (!row) {
        row = queueRow(name);
        table.append(row);
        document.getElementById("queues").hidden = false;
        const empty = document.getElementById("no-queues");
        if (empty) empty.hidden = true;
      }
      return row;
    }
    return document.querySelector(`.tabs[data-queue="${CSS.escape(name)}"]`) ? document : null;
  }

  function applyStats(queues) {
    for (const stats of queues) {
      const scope = statsScope(stats.queue);
      if (!scope) continue;
      for (const el of scope.querySelectorAll("[data-count]")) {
        const key = el.dataset.count;
        if (key === "oldest_queued_age_seconds") el.textContent = age(stats[key]);
        else if (key === "held") {
          const held = stats.held;
          el.textContent = String(held.rate_limit + held.concurrency + held.breaker);
          el.title = `rate limit ${held.rate_limit} · concurrency ${held.concurrency} · breaker ${held.breaker}`;
        }
        else if (key in stats) el.textContent = String(stats[key]);
      }
    }
  }

  function newRow(message) {
    const row = document.getElementById("task-row").content.firstElementChild.cloneNode(true);
    row.dataset.task = message.task_id;
    const link = row.querySelector("a");
    link.href = "/ui/tasks/" + encodeURIComponent(message.task_id);
    link.querySelector("code").textContent = message.task_id;
    row.querySelector(".type").textContent = message.type;
    const time = row.querySelector("time");
    time.setAttribute("datetime", message.timestamp);
    localize(time);
    return row;
  }

  function onQueuePage(table, message) {
    let row = table.querySelector(`tr[data-task="${CSS.escape(message.task_id)}"]`);
    const wanted = (table.dataset.status || message.status) === message.status
      && (table.dataset.type || message.type) === message.type;
    const fresh = message.attempt === 0 && (message.event === "queued" || message.event === "scheduled");
    const firstPage = !new URLSearchParams(location.search).has("cursor");
    if (!row && fresh && wanted && firstPage && !table.dataset.search) {
      row = newRow(message);
      table.querySelector("tbody").prepend(row);
      document.getElementById("no-tasks").hidden = true;
    }
    if (!row) return;
    row.querySelector(".status").replaceChildren(badge(message.status));
    row.querySelector(".attempts").textContent = String(message.attempt);
    row.classList.toggle("moved", !wanted);
  }

  // What a running attempt reports: the progress bar, and the log tail (its newest lines).
  function showProgress(progress) {
    const value = progress.value;
    const fraction = typeof value === "number" && value >= 0 && value <= 1 ? value : null;
    const bar = document.getElementById("progress-bar");
    if (fraction === null) bar.removeAttribute("value"); else bar.value = fraction;
    document.getElementById("progress-text").textContent =
      fraction === null ? JSON.stringify(value) : Math.round(fraction * 100) + "%";
    document.getElementById("progress-message").textContent = progress.message || "";
    const when = document.createElement("time");
    when.setAttribute("datetime", progress.updated_at);
    localize(when);
    document.getElementById("progress-when").replaceChildren("attempt " + progress.attempt + " · ", when);
    document.getElementById("progress").dataset.empty = "false";
  }

  function addLines(lines) {
    const list = document.getElementById("log");
    list.querySelector(".empty")?.remove();
    for (const line of lines) {
      const item = document.createElement("li");
      item.className = "l-" + line.level.toLowerCase();
      const when = document.createElement("time");
      when.setAttribute("datetime", line.time);
      localize(when);
      const level = document.createElement("span");
      level.className = "level";
      level.textContent = line.level;
      const attempt = document.createElement("span");
      attempt.className = "attempt";
      attempt.textContent = "#" + line.attempt;
      const text = document.createElement("span");
      text.className = "msg";
      text.textContent = line.message;
      item.append(when, " ", level, " ", attempt, " ", text);
      list.append(item);
    }
    const tail = Number(list.dataset.tail) || 200;
    while (list.children.length > tail) list.firstElementChild.remove();
  }

  let reloading = false;
  function onTaskPage(task, message) {
    if (message.task_id !== task.dataset.task) return;
    if (message.event === "progress") { showProgress(message.progress); return; }
    if (message.event === "log") { addLines(message.lines); return; }
    task.querySelector(".status").replaceChildren(badge(message.status));
    const step = document.createElement("li");
    const when = document.createElement("time");
    when.setAttribute("datetime", message.timestamp);
    localize(when);
    const name = document.createElement("strong");
    name.textContent = message.event.replace("_", " ");
    step.append(badge(message.status), " ", name, " · attempt " + message.attempt + " · ", when);
    const timeline = document.getElementById("timeline");
    timeline.querySelector(".empty")?.remove();
    timeline.append(step);
    const copy = document.getElementById("copy");
    const editing = copy && copy.dataset.edited === "true";
    if (FINISHED.has(message.status) && !editing && !reloading) {
      reloading = true; // the result, error and actions are the server's to render
      setTimeout(() => location.reload(), 150);
    }
  }

  // The Workers and Breakers pages: the server sends their table again when it changed.
  function showView(html) {
    const view = document.getElementById("view");
    if (!view) return;
    view.innerHTML = html;
    view.querySelectorAll("time[datetime]").forEach(localize);
  }

  // Throughput charts, drawn again by the server when tasks finished in their queue.
  function showCharts(drawn) {
    for (const [queue, html] of Object.entries(drawn)) {
      const place = document.querySelector(`[data-chart="${CSS.escape(queue)}"]`)
        || (document.querySelector(`.tabs[data-queue="${CSS.escape(queue)}"]`) && document.getElementById("throughput"));
      if (!place) continue;
      place.innerHTML = html;
      place.querySelectorAll("time[datetime]").forEach(localize);
    }
  }

  function applyEvent(message) {
    const table = document.getElementById("tasks");
    if (table) onQueuePage(table, message);
    const task = document.getElementById("task");
    if (task) onTaskPage(task, message);
  }

  function follow(query) {
    const state = document.getElementById("live");
    const live = { lastEventId: null, socket: null, delay: 250 };
    window.arqdLive = live;
    function show(text) {
      if (!state) return;
      state.dataset.state = text;
      state.textContent = text === "live" ? "live" : text + "…";
    }
    function connect() {
      const params = new URLSearchParams(query);
      if (live.lastEventId) params.set("last_event_id", live.lastEventId);
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(`${scheme}//${location.host}/ui/events?${params}`);
      live.socket = socket;
      socket.onopen = () => { show("live"); live.delay = 250; };
      socket.onmessage = (event) => {
        const message = JSON.parse(event.data);
        if (message.kind === "view") { showView(message.html); return; }
        if (message.kind === "charts") { showCharts(message.html); return; }
        if (message.kind === "stats") { applyStats(message.queues); return; }
        if (message.kind === "gap") { reloading = true; location.reload(); return; }
        live.lastEventId = message.event_id;
        applyEvent(message);
      };
      socket.onclose = () => {
        if (reloading) return;
        show("reconnecting");
        setTimeout(connect, live.delay);
        live.delay = Math.min(live.delay * 2, 5000);
      };
    }
    connect();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("time[datetime]").forEach(localize);
    const copy = document.getElementById("copy");
    if (copy) copy.addEventListener("input", () => { copy.dataset.edited = "true"; });
    // An action's form is sent once: a double click does not send it twice.
    document.querySelectorAll('form[method="post"]').forEach((form) => {
      form.addEventListener("submit", () => {
        form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; });
      });
    });
    const query = document.body.dataset.live;
    if (query !== undefined) follow(query);
  });
})();
