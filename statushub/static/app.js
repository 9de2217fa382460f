// The statushub dashboard.
//
// At / it is an overview: it follows /ws/status, which carries every
// deployment, and shows a row per deployment.  At /?deployment=NAME it is
// the view of that deployment: it follows /ws/status?deployment=NAME and
// shows a row per node.  Every feed message is a full picture of one
// deployment, so the page only ever renders the latest one of each.  It
// talks to its own origin only.
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  // A token configured on the hub reaches the page in its own URL (?token=);
  // the feed gets it the same way (browsers cannot set WebSocket headers),
  // the API as a bearer header.
  const token = params.get("token");
  // The deployment this page views, or null for the overview.
  const viewing = params.get("deployment");

  // Reconnect delays: doubling from 0.5 s up to 10 s, with jitter so that
  // many pages do not all come back at the same instant.
  const BACKOFF_INITIAL = 500;
  const BACKOFF_MAX = 10000;

  // Closes that retrying cannot fix (policy violation: bad token or origin).
  const FATAL_CLOSE_CODES = [1008];

  const $ = (id) => document.getElementById(id);

  const state = {
    socket: null,
    attempts: 0, // failed attempts since the last message
    retryTimer: null, // the pending reconnect, while waiting out a backoff
    retryAt: null,
    gotSnapshot: false, // has this connection sent its first picture?
    // deployment name (null: the hub has none) -> {epoch, seq} of the
    // last picture taken on this connection: seq counts per deployment
    seqs: new Map(),
    lastUpdate: null, // Date the last picture arrived
    missed: 0, // messages known to be missed (seq jumps)
    // the overview: name -> {picture, changed: Date of its last message}
    deployments: new Map(),
    // the view of one: its latest picture, and
    // nodeId -> {status, health, since: Date, seenAtStart: bool}
    picture: null,
    nodes: new Map(),
    shownAny: false, // has any picture been shown since the page loaded?
    // the view of one: {epoch, seq} of its last message, to resume after
    resume: null,
    // the view of one: its kept messages (history API, then the feed), by seq
    history: new Map(),
    newestKept: null, // the kept message with the highest seq
    // the kept message just before those (what each node was at the start)
    historyBefore: null,
    // may this page act on nodes? (GET /api/whoami says: the operator may)
    canChange: false,
  };

  // ---- addresses ---------------------------------------------------------

  // A link to a page of this dashboard that keeps the token.
  function pageUrl(deployment) {
    const query = new URLSearchParams();
    if (deployment !== null) {
      query.set("deployment", deployment);
    }
    if (token) {
      query.set("token", token);
    }
    const text = query.toString();
    return "/" + (text ? "?" + text : "");
  }

  function deploymentPath(name) {
    return "/api/deployments/" + encodeURIComponent(name);
  }

  function feedUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams();
    if (viewing !== null) {
      query.set("deployment", viewing);
      if (state.resume) {
        // what was missed while away comes first, then live ones
        query.set("since", String(state.resume.seq));
        query.set("epoch", state.resume.epoch);
      }
    }
    if (token) {
      query.set("token", token);
    }
    const text = query.toString();
    return scheme + "//" + window.location.host + "/ws/status" + (text ? "?" + text : "");
  }

  // ---- the feed --------------------------------------------------------

  function connect() {
    state.retryTimer = null;
    state.retryAt = null;
    state.gotSnapshot = false;
    state.seqs.clear();
    showConnection(state.attempts === 0 ? "connecting" : "reconnecting");
    let socket;
    try {
      socket = new WebSocket(feedUrl());
    } catch (err) {
      scheduleReconnect();
      return;
    }
    state.socket = socket;
    socket.onmessage = (event) => onFeedMessage(event.data);
    socket.onclose = async (event) => {
      if (state.socket !== socket) {
        return;
      }
      state.socket = null;
      if (FATAL_CLOSE_CODES.includes(event.code)) {
        showConnection("disconnected", "the hub refused the feed: " + (event.reason || "policy violation"));
        return;
      }
      // A browser is not told why an upgrade failed; if the feed never
      // opened, ask the API whether the token is the problem.
      if (!state.gotSnapshot) {
        const refusal = await tokenRefusal();
        if (refusal) {
          showConnection("disconnected", refusal);
          return;
        }
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    const base = Math.min(BACKOFF_MAX, BACKOFF_INITIAL * Math.pow(2, state.attempts));
    const delay = base / 2 + Math.random() * (base / 2);
    state.attempts += 1;
    state.retryAt = Date.now() + delay;
    state.retryTimer = window.setTimeout(connect, delay);
    showConnection("reconnecting");
  }

  // Only while waiting out a backoff or given up: never beside an attempt
  // that is still under way.
  function reconnectNow() {
    const waiting = state.retryTimer !== null;
    const givenUp = $("connection").dataset.state === "disconnected";
    if (state.socket || !(waiting || givenUp)) {
      return;
    }
    if (state.retryTimer) {
      window.clearTimeout(state.retryTimer);
    }
    connect();
  }

  function nameOf(message) {
    return typeof message.deployment === "string" ? message.deployment : null;
  }

  function onFeedMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch (err) {
      return; // not ours to show; the next picture will be
    }
    if (!message || message.type !== "status_update") {
      return;
    }
    if (!state.gotSnapshot) {
      // A connection starts with the current picture of every deployment
      // it carries: it replaces whatever was shown (a deployment torn down
      // while the feed was away is not in it).
      state.gotSnapshot = true;
      state.deployments.clear();
    }
    // seq counts per deployment and compares only within one epoch.
    const name = nameOf(message);
    const last = state.seqs.get(name);
    if (last && last.epoch === message.epoch) {
      if (message.seq <= last.seq) {
        return; // older than what is shown
      }
      if (message.seq > last.seq + 1) {
        // Something was missed: count it, and ask for that deployment's
        // picture in case this message is not the newest either.
        state.missed += message.seq - last.seq - 1;
        refetch(name);
      }
    }
    state.seqs.set(name, { epoch: message.epoch, seq: message.seq });
    state.attempts = 0;
    showConnection("live");
    if (viewing !== null && name === viewing && message.epoch) {
      state.resume = { epoch: message.epoch, seq: message.seq };
      keep(message);
    }
    take(message);
  }

  // The API's words when it refuses our token (401), else null.
  async function tokenRefusal() {
    try {
      const response = await fetch("/api/deployments", { headers: apiHeaders() });
      if (response.status === 401) {
        return (await describeRefusal(response)) +
          (token ? "" : " (open the page with ?token=...)");
      }
    } catch (err) {
      // the hub is away: retrying is right
    }
    return null;
  }

  async function refetch(name) {
    if (name === null) {
      return; // the idle picture of a hub with no deployment: nothing to fetch
    }
    try {
      const response = await fetch(deploymentPath(name), { headers: apiHeaders() });
      if (response.status === 404) {
        // gone meanwhile: its final picture is idle with no nodes
        const last = state.seqs.get(name);
        take(idlePicture(name, last));
        return;
      }
      if (!response.ok) {
        return;
      }
      const picture = await response.json();
      // Only if it is at least as new as what the feed has shown since.
      const last = state.seqs.get(name);
      if (!last || (picture.epoch === last.epoch && picture.seq >= last.seq)) {
        state.seqs.set(name, { epoch: picture.epoch, seq: picture.seq });
        take(picture);
      }
    } catch (err) {
      // the feed will bring the next picture anyway
    }
  }

  function idlePicture(name, last) {
    return {
      type: "status_update", deployment: name, deployStatus: "idle", nodeStatuses: [],
      engine: state.picture ? state.picture.engine : undefined, error: null,
      epoch: last ? last.epoch : undefined, seq: last ? last.seq : undefined,
    };
  }

  // A picture of one deployment, from the feed or the API.
  function take(picture) {
    state.lastUpdate = new Date();
    if (picture.engine) {
      setBadge($("engine"), picture.engine);
    }
    showMissed();
    if (viewing !== null) {
      renderView(picture);
    } else {
      const name = nameOf(picture);
      if (name === null) {
        state.deployments.clear(); // the hub has no deployment at all
      } else if (picture.deployStatus === "idle" && !(picture.nodeStatuses || []).length) {
        state.deployments.delete(name); // torn down: it drops out
      } else {
        state.deployments.set(name, { picture: picture, changed: new Date() });
      }
      renderOverview();
    }
    state.shownAny = true;
    tick();
  }

  // ---- rendering -------------------------------------------------------

  // Each word gets a colour class; the word itself is always shown.
  const TONE = {
    running: "good", healthy: "good", deployed: "good", live: "good", reachable: "good",
    created: "warn", restarting: "warn", paused: "warn", removing: "warn", starting: "warn",
    deploying: "warn", tearing_down: "warn", reconnecting: "warn", connecting: "warn",
    pending: "warn", ready: "good", down: "bad",
    exited: "bad", dead: "bad", missing: "bad", unhealthy: "bad", failed: "bad",
    disconnected: "bad", unreachable: "bad",
  };

  function setBadge(element, word, text) {
    element.textContent = text || word.replace(/_/g, " ");
    element.dataset.state = word;
    element.className = "badge " + (TONE[word] || "neutral");
  }

  function showConnection(connection, detail) {
    setBadge($("connection"), connection);
    if (detail === undefined) {
      detail = "";
      if (connection === "reconnecting" && state.retryAt) {
        detail = "(attempt " + state.attempts + ", next try in " +
          formatDuration(Math.max(0, state.retryAt - Date.now())) + ")";
      }
    }
    $("connection-detail").textContent = detail;
    const button = $("reconnect");
    if (button) {
      button.hidden = connection !== "disconnected";
    }
  }

  function showMissed() {
    const missed = $("missed");
    missed.textContent = state.missed
      ? state.missed + " update(s) missed on the feed; the picture was fetched again."
      : "";
    missed.hidden = !state.missed;
  }

  // -- the overview

  function renderOverview() {
    const tbody = $("deployments").tBodies[0];
    const rows = new Map();
    for (const row of tbody.rows) {
      rows.set(row.dataset.deployment, row);
    }
    const names = Array.from(state.deployments.keys()).sort();
    for (const name of names) {
      let row = rows.get(name);
      rows.delete(name);
      if (!row) {
        row = deploymentRow(name);
      }
      fillDeploymentRow(row, state.deployments.get(name).picture);
      tbody.appendChild(row); // in name order
    }
    for (const row of rows.values()) {
      row.remove();
    }
    $("no-deployments").hidden = names.length > 0;
  }

  function deploymentRow(name) {
    const row = document.createElement("tr");
    row.dataset.deployment = name;
    const link = document.createElement("a");
    link.href = pageUrl(name);
    link.textContent = name;
    addCell(row, "name", "").appendChild(link);
    addBadgeCell(row, "status");
    addCell(row, "nodes", "");
    addCell(row, "changed", "");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "teardown";
    button.textContent = "Tear down";
    button.addEventListener("click", () => teardown(name));
    addCell(row, "actions", "").appendChild(button);
    return row;
  }

  function fillDeploymentRow(row, picture) {
    row.dataset.status = picture.deployStatus;
    setBadge(row.querySelector('[data-field="status"] .badge'), picture.deployStatus);
    const nodes = row.querySelector('[data-field="nodes"]');
    nodes.textContent = "";
    const counts = countBy(picture.nodeStatuses || [], (node) => node.status);
    const health = countBy(
      (picture.nodeStatuses || []).filter((node) => node.health && node.health !== "healthy"),
      (node) => node.health);
    for (const [word, count] of counts.concat(health)) {
      const badge = document.createElement("span");
      setBadge(badge, word, count + " " + word.replace(/_/g, " "));
      badge.dataset.count = String(count);
      nodes.appendChild(badge);
      nodes.appendChild(document.createTextNode(" "));
    }
    if (!counts.length) {
      nodes.textContent = "no nodes";
    }
    if (picture.error) {
      const error = document.createElement("div");
      error.className = "row-error";
      error.textContent = "Error: " + picture.error;
      nodes.appendChild(error);
    }
    row.querySelector("button.teardown").disabled = picture.deployStatus === "tearing_down";
  }

  // [[key, count], ...] in key order.
  function countBy(items, key) {
    const counts = new Map();
    for (const item of items) {
      counts.set(key(item), (counts.get(key(item)) || 0) + 1);
    }
    return Array.from(counts.entries()).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }

  // -- the view of one deployment

  function renderView(picture) {
    state.picture = picture;
    $("deployment-name").textContent = viewing;
    setBadge($("deploy-status"), picture.deployStatus);

    const error = $("deploy-error");
    error.textContent = picture.error ? "Error: " + picture.error : "";
    error.hidden = !picture.error;

    renderNodes(picture.nodeStatuses || [], !state.shownAny);
    $("teardown").disabled = picture.deployStatus === "idle" ||
      picture.deployStatus === "tearing_down";
  }

  function renderNodes(nodeStatuses, firstPicture) {
    const now = new Date();
    const seen = new Map();
    const tbody = $("nodes").tBodies[0];
    tbody.textContent = "";
    // on a Swarm every node says which host it is on: show that column then
    const onCluster = nodeStatuses.some((node) => node.host || node.hostStatus);
    $("host-column").hidden = !onCluster;
    for (const node of nodeStatuses) {
      const before = state.nodes.get(node.nodeId);
      const health = node.health || null;
      let since = now;
      let seenAtStart = firstPicture;
      // Keep the clock running while neither the status nor the health changed.
      if (before && before.status === node.status && before.health === health) {
        since = before.since;
        seenAtStart = before.seenAtStart;
      }
      seen.set(node.nodeId, { status: node.status, health: health, since: since, seenAtStart: seenAtStart });

      const row = tbody.insertRow();
      row.dataset.node = node.nodeId;
      row.dataset.status = node.status;
      if (health) {
        row.dataset.health = health;
      }
      addCell(row, "node", node.nodeId);
      const container = addCell(row, "container", (node.containerId || "").slice(0, 12) || "—");
      container.title = node.containerId || "";
      if (onCluster) {
        addHostCell(row, node);
      }
      const statusBadge = addBadgeCell(row, "status");
      setBadge(statusBadge, node.status);
      if (node.error) {
        statusBadge.title = node.error; // why a Swarm task failed
      }
      if (node.stoppedBy) {
        // stopped on purpose: no crash, whatever the exit code says
        row.dataset.stoppedBy = node.stoppedBy;
        setBadge(statusBadge, "stopped");
        statusBadge.title = node.status + ", stopped by the " + node.stoppedBy;
      }
      const healthBadge = addBadgeCell(row, "health");
      if (health) {
        setBadge(healthBadge, health);
      } else {
        healthBadge.textContent = "n/a"; // only running containers with a check report health
        healthBadge.className = "badge neutral";
        healthBadge.dataset.state = "";
      }
      addCell(row, "since", "");
      // CPU, memory, the node's log, an OOM kill (insight.js)
      window.statushubInsight.fillRow(row, node);
      window.statushubInsight.nodeChanged(node);
      if (state.canChange) {
        addActionsCell(row, node);
      }
    }
    state.nodes = seen;
    $("no-nodes").hidden = nodeStatuses.length > 0;
    $("node-actions-column").hidden = !state.canChange;
  }

  // ---- acting on one node (the operator's page only) -----------------------

  const NODE_ACTIONS = ["restart", "stop", "start", "recreate"];
  // asked before they are sent: each ends what the node is doing
  const CONFIRM = {
    stop: (nodeId) => "Stop " + nodeId + "? It stays stopped until it is started again.",
    recreate: (nodeId) => "Recreate " + nodeId + "? Its container is removed and made anew.",
  };
  const RUNNING = ["running", "restarting", "paused", "pending"];

  // The actions that apply to a node now.
  function actionsFor(node) {
    if (!state.picture || state.picture.deployStatus !== "deployed" || node.action) {
      return [];
    }
    if (node.status === "missing" || !node.containerId) {
      return ["recreate"];
    }
    if (node.status === "unknown") {
      return [];
    }
    if (RUNNING.includes(node.status) && !node.stoppedBy) {
      return ["restart", "stop", "recreate"];
    }
    return ["start", "recreate"];
  }

  function addActionsCell(row, node) {
    const cell = addCell(row, "actions", "");
    if (node.action) {
      const note = document.createElement("span");
      note.className = "under-way";
      note.textContent = node.action + " under way…";
      cell.appendChild(note);
    }
    for (const action of actionsFor(node)) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = action;
      button.textContent = action.charAt(0).toUpperCase() + action.slice(1);
      button.addEventListener("click", () => actOnNode(node.nodeId, action));
      cell.appendChild(button);
    }
    if (node.actionError) {
      const error = document.createElement("div");
      error.className = "row-error";
      error.textContent = node.actionError;
      cell.appendChild(error);
    }
  }

  async function actOnNode(nodeId, action) {
    const ask = CONFIRM[action];
    if (ask && !window.confirm(ask(nodeId))) {
      return;
    }
    const path = deploymentPath(viewing) + "/nodes/" + encodeURIComponent(nodeId) + "/" + action;
    showApiMessage(action + " of " + nodeId + "…", false);
    let response;
    try {
      response = await fetch(path, {
        method: "POST", body: "{}",
        headers: apiHeaders({ "Content-Type": "application/json" }),
      });
    } catch (err) {
      showApiMessage("Could not reach the hub: " + err.message, true);
      return;
    }
    if (response.status === 202) {
      showApiMessage(action.charAt(0).toUpperCase() + action.slice(1) + " of " + nodeId + " accepted.", false);
    } else if (response.ok) {
      showApiMessage(nodeId + " is already " + (action === "stop" ? "stopped" : "running") + ".", false);
    } else {
      showApiMessage(await describeRefusal(response), true);
    }
  }

  // Whether this page's token may change things: GET /api/whoami.  A
  // viewer's, or none when tokens are set (401), may not: no buttons.  The
  // answer goes on <body data-role> too, for scripts and tests.
  async function learnRole() {
    let canChange = false;
    let role = "none";
    try {
      const response = await fetch("/api/whoami", { headers: apiHeaders() });
      if (response.ok) {
        const answer = await response.json();
        canChange = answer.canChange === true;
        role = String(answer.role);
      }
    } catch (err) {
      // the hub is away: no buttons until the page is loaded again
    }
    state.canChange = canChange;
    document.body.dataset.role = role;
    if (state.picture) {
      renderNodes(state.picture.nodeStatuses || [], false);
    }
  }

  // The host's name, and a badge when it is not ready (down, or unknown).
  function addHostCell(row, node) {
    const cell = addCell(row, "host", node.host || "—");
    if (node.host) {
      row.dataset.host = node.host;
    }
    if (node.hostStatus) {
      row.dataset.hostStatus = node.hostStatus;
      cell.title = "host " + node.hostStatus;
      if (node.hostStatus !== "ready") {
        const badge = document.createElement("span");
        cell.appendChild(document.createTextNode(" "));
        cell.appendChild(badge);
        setBadge(badge, node.hostStatus, "host " + node.hostStatus);
      }
    }
    return cell;
  }

  function addCell(row, field, text) {
    const cell = row.insertCell();
    cell.dataset.field = field;
    cell.textContent = text;
    return cell;
  }

  function addBadgeCell(row, field) {
    const cell = row.insertCell();
    cell.dataset.field = field;
    const badge = document.createElement("span");
    badge.className = "badge neutral";
    cell.appendChild(badge);
    return badge;
  }

  // Durations and "last update" age move on between messages.
  function tick() {
    const now = Date.now();
    for (const row of $("nodes").tBodies[0].rows) {
      const node = state.nodes.get(row.dataset.node);
      const cell = row.querySelector('[data-field="since"]');
      if (node && cell) {
        // A state already there when the page first looked may be older.
        cell.textContent = (node.seenAtStart ? "≥ " : "") + formatDuration(now - node.since.getTime());
        cell.title = node.seenAtStart ? "already so when this page started watching" : "";
      }
    }
    for (const row of $("deployments").tBodies[0].rows) {
      const entry = state.deployments.get(row.dataset.deployment);
      const cell = row.querySelector('[data-field="changed"]');
      if (entry && cell) {
        cell.textContent = formatDuration(now - entry.changed.getTime()) + " ago";
        cell.title = "seq " + entry.picture.seq;
      }
    }
    const last = $("last-update");
    if (state.lastUpdate) {
      last.dateTime = state.lastUpdate.toISOString();
      last.textContent = state.lastUpdate.toLocaleTimeString() + " (" +
        formatDuration(now - state.lastUpdate.getTime()) + " ago)";
    }
    if ($("connection").dataset.state === "reconnecting") {
      showConnection("reconnecting");
    }
  }

  function formatDuration(ms) {
    const seconds = Math.floor(ms / 1000);
    if (seconds < 60) {
      return seconds + " s";
    }
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) {
      return minutes + " min " + (seconds % 60) + " s";
    }
    const hours = Math.floor(minutes / 60);
    return hours + " h " + (minutes % 60) + " min";
  }

  // ---- history: timelines and changes -------------------------------------

  const HOUR = 3600 * 1000;
  const MAX_CHANGES = 200;
  // the history API's page size: an hour that holds more is read page by page
  const HISTORY_PAGE = 1000;

  // One message of the viewed deployment into the kept ones, by seq: within
  // one database a seq is one message, whatever its epoch (after a crash the
  // epoch changes and seq goes on).
  function keep(message) {
    if (!(message.seq > 0)) {
      return; // a deployment not there yet
    }
    const known = state.history.get(message.seq);
    const newest = state.newestKept;
    if (known ? known.epoch !== message.epoch
      : newest && newest.epoch !== message.epoch && message.seq <= newest.seq) {
      // numbering started over (another database): the old seqs mean nothing
      state.history.clear();
      state.historyBefore = null;
      state.newestKept = null;
    } else if (known) {
      return; // kept already
    }
    state.history.set(message.seq, message);
    if (!state.newestKept || message.seq > state.newestKept.seq) {
      state.newestKept = message;
    }
    renderHistory();
  }

  // GET the history of the viewed deployment with these arguments: its page,
  // null when it was never deployed; throws with the API's words otherwise.
  async function historyPage(args) {
    const response = await fetch(
      deploymentPath(viewing) + "/history?" + new URLSearchParams(args).toString(),
      { headers: apiHeaders() });
    if (response.status === 404) {
      return null;
    }
    if (!response.ok) {
      throw new Error("History unavailable: " + (await describeRefusal(response)));
    }
    return await response.json();
  }

  // Only what the page draws: the messages of the last hour (page by page),
  // and the one just before it, which says what each node was when the hour
  // began.
  async function loadHistory() {
    const problem = $("history-problem");
    const after = new Date(Date.now() - HOUR).toISOString();
    const messages = [];
    let before = null;
    let lastSeq = 0;
    try {
      let since = 0;
      let page;
      for (;;) {
        page = await historyPage({ after: after, since: String(since), limit: String(HISTORY_PAGE) });
        if (page === null) {
          return; // never deployed: nothing happened yet
        }
        lastSeq = page.last;
        messages.push(...page.messages);
        if (page.messages.length < HISTORY_PAGE) {
          break;
        }
        since = page.messages[page.messages.length - 1].seq;
      }
      // the hour's first message, or (a quiet hour) the deployment's last
      const first = messages.length ? messages[0].seq : page.last + 1;
      if (first > 1) {
        const previous = await historyPage({ since: String(first - 2), limit: "1" });
        if (previous && previous.messages.length && previous.messages[0].seq === first - 1) {
          before = previous.messages[0];
        }
      }
    } catch (err) {
      if (err.message.startsWith("History unavailable")) {
        problem.textContent = err.message;
        problem.hidden = false;
      }
      return; // else the hub is away; the feed brings what happens next
    }
    // The hub's history is what it keeps now; of what the feed brought
    // meanwhile, what came after it.
    const loaded = new Map(messages.map((message) => [message.seq, message]));
    const lastLoaded = messages.length ? messages[messages.length - 1].seq : lastSeq;
    for (const [seq, message] of state.history) {
      if (seq > lastLoaded) {
        loaded.set(seq, message);
      }
    }
    state.history = loaded;
    state.historyBefore = before;
    state.newestKept = null;
    for (const message of loaded.values()) {
      if (!state.newestKept || message.seq > state.newestKept.seq) {
        state.newestKept = message;
      }
    }
    problem.hidden = true;
    renderHistory();
  }

  // A node's state in one word: unhealthy counts as its own state, and so
  // does a node an operator stopped (stopped on purpose, not a crash).
  function stateWord(node) {
    if (!node) {
      return "missing";
    }
    if (node.stoppedBy && node.status !== "running") {
      return "stopped";
    }
    if ((node.action === "restart" || node.action === "recreate") && node.status !== "running") {
      return "restarting"; // an operator's restart on its way, not a crash
    }
    return node.status === "running" && node.health === "unhealthy" ? "unhealthy" : node.status;
  }

  function nodesOf(message) {
    const nodes = new Map();
    if (message && message.deployStatus !== "idle") {
      for (const node of message.nodeStatuses || []) {
        nodes.set(node.nodeId, node);
      }
    }
    return nodes;
  }

  // [{time, nodeId, from, to, node, known}] from the kept messages, oldest
  // first.  C{before} is the message just before them: its nodes are where
  // the changes start from (as "known" entries, which are not changes).
  // A node that comes with a deployment has from === null; one that goes
  // with a teardown has to === "gone".
  function changesOf(messages, before) {
    const changes = [];
    let previous = nodesOf(before);
    for (const [nodeId, node] of previous) {
      // since when: the node's own since (when its status last changed)
      // where it says, else the time of that message
      const word = stateWord(node);
      const time = new Date(node.since && word === node.status ? node.since : before.timestamp);
      changes.push({ time: time, nodeId: nodeId, from: null, to: word, node: node, known: true });
    }
    for (const message of messages) {
      const now = nodesOf(message);
      const time = new Date(message.timestamp);
      for (const [nodeId, node] of now) {
        const from = previous.has(nodeId) ? stateWord(previous.get(nodeId)) : null;
        const to = stateWord(node);
        if (from !== to) {
          changes.push({ time: time, nodeId: nodeId, from: from, to: to, node: node });
        }
      }
      for (const [nodeId, node] of previous) {
        if (!now.has(nodeId)) {
          changes.push({ time: time, nodeId: nodeId, from: stateWord(node), to: "gone", node: null });
        }
      }
      previous = now;
    }
    return changes;
  }

  function keptChanges() {
    const messages = Array.from(state.history.keys()).sort((a, b) => a - b)
      .map((seq) => state.history.get(seq));
    return changesOf(messages, state.historyBefore);
  }

  function renderHistory() {
    const changes = keptChanges();
    renderTimelines(changes);
    renderChanges(changes.filter((change) => !change.known));
  }

  // Per node, its spans [{from: ms, to: ms or null while it lasts, word}]:
  // a span ends at the next change of that node; a teardown ("gone") ends
  // the last one, and a new deployment starts a new one after the gap.
  function spansOf(changes) {
    const spans = new Map();
    for (const change of changes) {
      const list = spans.get(change.nodeId) || [];
      const t = change.time.getTime();
      const last = list[list.length - 1];
      if (last && last.to === null) {
        last.to = t;
      }
      if (change.to !== "gone") {
        list.push({ from: t, to: null, word: change.to });
      }
      spans.set(change.nodeId, list);
    }
    return spans;
  }

  function renderTimelines(changes) {
    const end = Date.now();
    const start = end - HOUR;
    const spans = spansOf(changes);
    const box = $("timelines");
    box.textContent = "";
    for (const nodeId of Array.from(spans.keys()).sort()) {
      const line = document.createElement("div");
      line.className = "timeline";
      line.dataset.for = nodeId;
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = nodeId;
      const bar = document.createElement("div");
      bar.className = "bar";
      for (const span of spans.get(nodeId)) {
        const to = span.to === null ? end : span.to; // the current state reaches the right edge
        if (to < start) {
          continue;
        }
        const from = Math.max(span.from, start);
        const segment = document.createElement("span");
        segment.className = "segment " + (TONE[span.word] || "neutral");
        // the times as they are (not as drawn): for scripts and tests
        segment.dataset.state = span.word;
        segment.dataset.from = new Date(span.from).toISOString();
        if (span.to !== null) {
          segment.dataset.to = new Date(span.to).toISOString();
        }
        segment.style.left = ((from - start) / HOUR * 100) + "%";
        segment.style.width = ((to - from) / HOUR * 100) + "%";
        segment.title = span.word + ": " + new Date(span.from).toLocaleTimeString() + " – " +
          (span.to === null ? "now" : new Date(span.to).toLocaleTimeString());
        bar.appendChild(segment);
      }
      line.append(label, bar);
      box.appendChild(line);
    }
  }

  function renderChanges(changes) {
    const tbody = $("changes").tBodies[0];
    tbody.textContent = "";
    const newest = changes.slice(-MAX_CHANGES).reverse();
    for (const change of newest) {
      const row = tbody.insertRow();
      const from = change.from === null ? "deployed" : change.from;
      row.dataset.for = change.nodeId;
      row.dataset.from = from;
      row.dataset.to = change.to;
      row.dataset.time = change.time.toISOString();
      const time = addCell(row, "time", change.time.toLocaleTimeString());
      time.title = change.time.toISOString();
      addCell(row, "node", change.nodeId);
      addCell(row, "change", from + " → " + change.to);
      const node = change.node || {};
      addCell(row, "exitCode", node.exitCode === undefined ? "" : String(node.exitCode));
      addCell(row, "output", node.healthOutput || "");
    }
    $("no-changes").hidden = newest.length > 0;
  }

  // ---- actions ---------------------------------------------------------

  function apiHeaders(extra) {
    const headers = Object.assign({}, extra || {});
    if (token) {
      headers["Authorization"] = "Bearer " + token;
    }
    return headers;
  }

  function showApiMessage(text, isError) {
    const element = $("api-message");
    element.textContent = text;
    element.className = isError ? "error" : "note";
    element.hidden = !text;
  }

  // The API answers errors as {"error": "...", "field": "..."}; show its
  // words, and the raw body when it is not that.
  async function describeRefusal(response) {
    const body = await response.text();
    let text = body.trim() || response.status + " " + response.statusText;
    try {
      const parsed = JSON.parse(body);
      if (parsed && typeof parsed.error === "string") {
        text = parsed.error;
        if (parsed.field && !text.includes(parsed.field)) {
          text += " (field: " + parsed.field + ")";
        }
      }
    } catch (err) {
      // not JSON: the raw body it is
    }
    return "Refused (" + response.status + "): " + text;
  }

  async function callApi(method, path, body, accepted) {
    const options = { method: method, headers: apiHeaders() };
    if (body !== undefined) {
      options.body = body;
      options.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      showApiMessage("Could not reach the hub: " + err.message, true);
      return;
    }
    if (response.ok) {
      showApiMessage(accepted, false);
    } else {
      showApiMessage(await describeRefusal(response), true);
    }
  }

  async function deployFromFile(event) {
    event.preventDefault();
    const file = $("deploy-file").files[0];
    if (!file) {
      showApiMessage("Pick a topology file first.", true);
      return;
    }
    // Sent as it is: the API validates it and says what is wrong.
    const text = await file.text();
    showApiMessage("Deploying " + file.name + "…", false);
    await callApi("POST", "/api/deployments", text, "Deployment of " + file.name + " accepted.");
  }

  async function teardown(name) {
    if (!window.confirm("Tear down " + name + "? Its containers are removed.")) {
      return;
    }
    showApiMessage("Tearing down " + name + "…", false);
    await callApi("DELETE", deploymentPath(name), undefined, "Teardown of " + name + " accepted.");
  }

  // ---- start -----------------------------------------------------------

  function start() {
    $("home").href = pageUrl(null);
    $("overview-link").href = pageUrl(null);
    if (viewing !== null) {
      document.title = viewing + " · statushub";
      $("deployment-name").textContent = viewing;
      $("deployment-view").hidden = false;
      // deploying belongs to the overview, where the new row shows up
      $("deploy-form").hidden = true;
      $("actions-heading").hidden = true;
      $("teardown").addEventListener("click", () => teardown(viewing));
      learnRole();
    } else {
      $("overview").hidden = false;
    }
    $("deploy-form").addEventListener("submit", deployFromFile);

    // A button to retry by hand once the hub has refused us.
    const button = document.createElement("button");
    button.id = "reconnect";
    button.type = "button";
    button.textContent = "Reconnect";
    button.hidden = true;
    button.addEventListener("click", () => {
      state.attempts = 0;
      reconnectNow();
    });
    $("connection-detail").after(button);

    // Coming back online or to the tab: no need to wait for the backoff.
    window.addEventListener("online", reconnectNow);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) {
        reconnectNow();
      }
    });

    window.setInterval(tick, 1000);
    connect();
    window.statushubInsight.start();
    if (viewing !== null) {
      loadHistory();
      // the bars slide left as time goes on
      window.setInterval(() => renderTimelines(keptChanges()), 10000);
    }
  }

  start();
})();
