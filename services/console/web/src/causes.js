// Root causes first: one line per failing or warning dependency, with its region, since when, what
// was observed against the thresholds and what it takes down; the rest of its story on demand.
import { clock, dot, duration, h } from './dom.js';

function observed(leaf) {
  if (leaf.observed === undefined || leaf.observed === null) return null;
  const unit = leaf.unit ? ` ${leaf.unit}` : '';
  const bounds = leaf.thresholds ? ` (yellow ≥ ${leaf.thresholds[0]}, red ≥ ${leaf.thresholds[1]}${unit})` : '';
  return `${leaf.observed}${unit}${bounds}`;
}

function leafItem(region, leaf) {
  const value = observed(leaf);
  return h(
    'li',
    {},
    dot(leaf.color),
    h('span', { class: 'name' }, `${region} ${leaf.dependency}`),
    value ? h('span', { class: 'value' }, value) : null,
    h('span', { class: 'reason' }, leaf.reason),
  );
}

function causeLine(cause, now) {
  const since = cause.since ? new Date(cause.since) : null;
  const takes = [
    cause.flows.length ? `${cause.color === 'red' ? 'takes down' : 'affects'} ${cause.flows.map((f) => f.replaceAll('_', ' ')).join(', ')}` : null,
    cause.components.length ? `components ${cause.components.join(', ')}` : null,
  ]
    .filter(Boolean)
    .join('; ');
  return h(
    'li',
    { class: `cause ${cause.color}`, 'data-color': cause.color, 'data-testid': 'root-cause', 'data-key': cause.key },
    h(
      'div',
      { class: 'line' },
      dot(cause.color),
      h('strong', { class: 'label', 'data-testid': 'root-cause-label' }, cause.label),
      h('span', { class: 'state' }, cause.state),
      since ? h('span', { class: 'since' }, `since ${clock(since)} (${duration((now - since) / 1000)})`) : null,
      h('span', { class: 'summary', 'data-testid': 'root-cause-summary' }, cause.summary),
      takes ? h('span', { class: 'takes' }, takes) : null,
    ),
    h(
      'details',
      {},
      h('summary', {}, `${cause.leaves.length} failing checks`, cause.effects?.length ? `, ${cause.effects.length} effects` : ''),
      h('ul', { class: 'leaves' }, cause.leaves.slice(1).map((leaf) => leafItem(cause.region, leaf))),
      cause.effects?.length
        ? h('ul', { class: 'effects' }, cause.effects.map((effect) => leafItem(effect.region, effect)))
        : null,
    ),
  );
}

/** Keeps each cause's details open across redraws when the operator opened them. */
export function drawCauses(list, causes, now) {
  const open = new Set([...list.querySelectorAll('li.cause')].filter((li) => li.querySelector('details')?.open).map((li) => li.dataset.key));
  if (!causes.length) {
    list.replaceChildren(h('li', { class: 'none', 'data-testid': 'no-root-cause' }, 'No root cause: every dependency is green.'));
    return;
  }
  list.replaceChildren(
    ...causes.map((cause) => {
      const line = causeLine(cause, now);
      if (open.has(cause.key)) line.querySelector('details').open = true;
      return line;
    }),
  );
}
