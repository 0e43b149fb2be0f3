// The console page: polls the console's API and draws the global status, the root causes, one card
// per region with its health tree and drain buttons, the launch panel, the incidents, live charts,
// dead-letter counts and the history of changes.
import * as api from './api.js';
import { drawCauses } from './causes.js';
import { Charts } from './charts.js';
import { clock, dot, h } from './dom.js';
import { drawIncidents } from './incidents.js';
import { drawLaunch } from './launch.js';
import { regionReason, regionTree } from './tree.js';

const MODEL_EVERY_MS = 2000;
const SERIES_EVERY_MS = 5000;
const HISTORY_EVERY_MS = 5000;
/** The series the launch panel charts; the others go under Live. */
const LAUNCH_SERIES = new Set(['accepted_rate', 'shed_rate', 'rate_limited_rate', 'in_flight', 'outcome_p50', 'outcome_p99']);

const cards = new Map();
let lastModelAt = null;
/** The operator token lives only in this variable: never stored, never put into the page. */
let operatorToken = null;

function setColor(element, color) {
  element.dataset.color = color;
}

function showConnection(problem) {
  const banner = document.getElementById('connection');
  if (!problem) {
    banner.hidden = true;
    return;
  }
  const since = lastModelAt ? ` — showing the state as of ${clock(lastModelAt)}` : '';
  banner.textContent = `The console is not answering (${problem})${since}`;
  banner.hidden = false;
}

function regionCard(name) {
  let card = cards.get(name);
  if (card) return card;
  const badge = h('span', { class: 'badge' });
  const reason = h('p', { class: 'reason', 'data-testid': `region-${name}-reason` });
  const result = h('p', { class: 'action-result', 'aria-live': 'polite' });
  const tree = h('div', { class: 'tree-box' });
  const root = h(
    'article',
    { class: 'region', 'data-testid': `region-${name}`, 'data-color': 'unknown' },
    h(
      'header',
      {},
      h('h2', {}, name),
      badge,
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', 'data-testid': `drain-${name}`, onclick: () => act(name, 'drain') }, 'Drain'),
      h('button', { type: 'button', 'data-testid': `undrain-${name}`, onclick: () => act(name, 'undrain') }, 'Undrain'),
    ),
    reason,
    result,
    tree,
  );
  document.getElementById('regions').append(root);
  card = { root, badge, reason, result, tree };
  cards.set(name, card);
  return card;
}

function drawModel(model) {
  const ownReasons = model.own_reasons ?? {};
  const causes = model.root_causes ?? [];
  const global = document.getElementById('global');
  setColor(global, model.global.color);
  global.querySelector('.dot').className = `dot ${model.global.color}`;
  document.getElementById('global-text').textContent = `Global: ${model.global.color}`;
  document.getElementById('global-reason').textContent = ownReasons.global ?? '';
  drawCauses(document.getElementById('causes'), causes, new Date(model.evaluated_at));
  for (const [name, region] of Object.entries(model.regions)) {
    const card = regionCard(name);
    setColor(card.root, region.color);
    card.badge.replaceChildren(dot(region.color), region.color);
    card.reason.textContent = regionReason(name, region, ownReasons, causes);
    const open = card.tree.querySelector('details.checks')?.open ?? false;
    card.tree.replaceChildren(regionTree(name, region, model.flow_components ?? {}, ownReasons, open));
  }
}

async function refreshModel() {
  try {
    const model = await api.healthModel();
    lastModelAt = new Date(model.evaluated_at);
    drawModel(model);
    showConnection(null);
  } catch (error) {
    showConnection(error.message);
  }
}

async function act(region, action) {
  const card = regionCard(region);
  if (!operatorToken) {
    const entered = window.prompt(`Operator token to ${action} region ${region}`);
    if (!entered) {
      card.result.textContent = `${action} cancelled`;
      return;
    }
    operatorToken = entered.trim();
  }
  card.result.textContent = `${action}: sending…`;
  try {
    const { status, body } = await api.regionAction(region, action, operatorToken);
    if (status === 401) operatorToken = null;
    const services = (body?.services ?? [])
      .map((s) => `${s.service} ${s.ok ? 'ok' : s.status ? `answered ${s.status}` : s.error}`)
      .join(', ');
    const summary = status === 200 ? 'done' : status === 401 ? 'rejected: wrong operator token' : `failed (${status})`;
    card.result.textContent = `${action} ${summary}${services ? ` — ${services}` : body?.detail ? ` — ${body.detail}` : ''}`;
  } catch (error) {
    card.result.textContent = `${action} failed: ${error.message}`;
  }
  refreshModel();
}

const charts = new Charts(document.getElementById('charts'), (key) => !LAUNCH_SERIES.has(key));
const launchCharts = new Charts(document.getElementById('launch-charts'), (key) => LAUNCH_SERIES.has(key));

function drawDeadLetters(view) {
  const find = (key) => view.series.find((s) => s.key === key)?.lines ?? {};
  const totals = find('dead_lettered');
  const rates = find('dead_letter_rate');
  const last = (points) => (points && points.length ? points[points.length - 1][1] : null);
  const regions = [...new Set([...Object.keys(totals), ...Object.keys(rates), ...cards.keys()])].sort();
  const table = document.getElementById('dead-letters');
  table.replaceChildren(
    h('tr', {}, h('th', {}, 'region'), h('th', {}, 'total'), h('th', {}, 'per minute')),
    ...regions.map((region) =>
      h(
        'tr',
        { 'data-testid': `dead-letters-${region}` },
        h('td', {}, region),
        h('td', {}, last(totals[region]) ?? '–'),
        h('td', {}, last(rates[region])?.toFixed(2) ?? '–'),
      ),
    ),
  );
}

async function refreshSeries() {
  try {
    const view = await api.series();
    charts.update(view);
    launchCharts.update(view);
    drawDeadLetters(view);
  } catch (error) {
    showConnection(error.message);
  }
}

function describeChange(change) {
  const from = change.from ?? 'new';
  const to = change.to ?? 'gone';
  return h(
    'li',
    { class: `change ${change.to ?? 'gone'}` },
    h('time', { datetime: change.at }, clock(new Date(change.at))),
    h('span', { class: 'level' }, change.level),
    h('span', { class: 'name' }, change.node),
    h('span', { class: 'transition' }, dot(change.from), from, ' → ', dot(change.to), to),
    change.reasons?.length ? h('span', { class: 'reason' }, change.reasons.join('; ')) : null,
  );
}

async function refreshLaunch() {
  try {
    drawLaunch(document.getElementById('launch'), await api.launch());
  } catch (error) {
    showConnection(error.message);
  }
}

async function refreshIncidents() {
  try {
    drawIncidents(document.getElementById('incidents'), await api.incidents());
  } catch (error) {
    showConnection(error.message);
  }
}

async function refreshHistory() {
  try {
    const view = await api.history();
    const list = document.getElementById('history');
    const items = view.changes.slice(0, 300).map(describeChange);
    list.replaceChildren(...(items.length ? items : [h('li', { class: 'empty' }, 'no changes in the last hour')]));
  } catch (error) {
    showConnection(error.message);
  }
}

function every(ms, task) {
  task();
  setInterval(task, ms);
}

every(MODEL_EVERY_MS, refreshModel);
every(SERIES_EVERY_MS, refreshSeries);
every(HISTORY_EVERY_MS, refreshHistory);
every(MODEL_EVERY_MS, refreshIncidents);
every(SERIES_EVERY_MS, refreshLaunch);
