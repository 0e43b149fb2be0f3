// The launch on one screen: per region, placements accepted, shed (503) and rate-limited (429) per
// second with their totals, work in flight against its limit, placement to outcome (p50, p99), and
// what the fastest-selling SKUs have left in each region.
import { h } from './dom.js';

const rate = (v) => (v === null || v === undefined ? '–' : v.toFixed(1));
const ms = (v) => (v === null || v === undefined ? '–' : `${Math.round(v * 1000)} ms`);
const count = (v) => (v === null || v === undefined ? '–' : String(Math.round(v)));

function figure(testid, name, value, extra) {
  return h(
    'div',
    { class: 'figure', 'data-testid': testid },
    h('span', { class: 'figure-name' }, name),
    h('span', { class: 'figure-value' }, value),
    extra ? h('span', { class: 'figure-extra' }, extra) : null,
  );
}

function regionRow(name, r) {
  const limit = r.in_flight_limit ?? null;
  return h(
    'div',
    { class: 'launch-region', 'data-testid': `launch-${name}` },
    h('h3', {}, name),
    figure(`launch-${name}-accepted`, 'accepted /s', rate(r.accepted_per_second), `${count(r.accepted_total)} total`),
    h(
      'div',
      { class: `figure ${r.shed_per_second > 0 ? 'hot' : ''}`, 'data-testid': `launch-${name}-shed`, 'data-total': r.shed_total },
      h('span', { class: 'figure-name' }, 'shed 503 /s'),
      h('span', { class: 'figure-value' }, rate(r.shed_per_second)),
      h('span', { class: 'figure-extra' }, `${count(r.shed_total)} total`),
    ),
    h(
      'div',
      {
        class: `figure ${r.rate_limited_per_second > 0 ? 'hot' : ''}`,
        'data-testid': `launch-${name}-rate-limited`,
        'data-total': r.rate_limited_total,
      },
      h('span', { class: 'figure-name' }, 'rate-limited 429 /s'),
      h('span', { class: 'figure-value' }, rate(r.rate_limited_per_second)),
      h('span', { class: 'figure-extra' }, `${count(r.rate_limited_total)} total`),
    ),
    figure(`launch-${name}-in-flight`, 'in flight', `${count(r.in_flight)} / ${count(limit)}`, 'limit'),
    figure(`launch-${name}-outcome`, 'placed → outcome', ms(r.outcome_p50), `p99 ${ms(r.outcome_p99)}`),
  );
}

function skuTable(skus, regions) {
  return h(
    'table',
    { class: 'skus', 'data-testid': 'launch-skus' },
    h('tr', {}, h('th', {}, 'fastest-selling SKU'), h('th', {}, 'sold /min'), ...regions.map((r) => h('th', {}, `${r} left`))),
    ...(skus.length
      ? skus.map((sku) =>
          h(
            'tr',
            { 'data-testid': `sku-${sku.sku}` },
            h('td', {}, sku.sku),
            h('td', {}, sku.sold_per_minute.toFixed(1)),
            ...regions.map((r) => h('td', {}, count(sku.remaining[r]))),
          ),
        )
      : [h('tr', {}, h('td', { colspan: 2 + regions.length, class: 'empty' }, 'no allotments exported yet'))]),
  );
}

export function drawLaunch(container, view) {
  const regions = Object.keys(view.regions).sort();
  container.replaceChildren(
    h('div', { class: 'launch-regions' }, regions.map((name) => regionRow(name, view.regions[name]))),
    skuTable(view.skus ?? [], regions),
  );
}
