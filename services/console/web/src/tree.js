// The health model drawn as one card per region: region → user flows → components, each node with
// its colour and only its own reason ("1 of 3 components red (kafka)"); the checks under each
// component, with their own reasons, open on demand.
import { dot, h } from './dom.js';

const label = (name) => name.replaceAll('_', ' ');

function chip(name, component) {
  const color = component?.color ?? 'red';
  return h(
    'li',
    { class: `component ${color}`, 'data-color': color, 'data-testid': 'component' },
    dot(color),
    h('span', { class: 'name' }, name),
  );
}

function flowItem(region, name, flow, components, needed, ownReasons) {
  const own = ownReasons[`flow:${region}/${name}`];
  return h(
    'li',
    { class: `flow ${flow.color}`, 'data-color': flow.color, 'data-testid': `flow-${name}` },
    dot(flow.color),
    h('span', { class: 'name' }, label(name)),
    own ? h('span', { class: 'reason' }, own) : null,
    h('ul', { class: 'components' }, needed.map((component) => chip(component, components[component]))),
  );
}

/** Every component's checks, each with its own reason: closed until asked for. */
function checks(region, components, ownReasons) {
  const entries = Object.entries(components);
  const notGreen = entries.filter(([, c]) => c.color !== 'green').length;
  return h(
    'details',
    { class: 'checks', 'data-testid': `checks-${region}` },
    h('summary', {}, `checks of ${entries.length} components`, notGreen ? ` (${notGreen} not green)` : ''),
    h(
      'ul',
      {},
      entries.map(([name, component]) =>
        h(
          'li',
          { class: `component ${component.color}` },
          dot(component.color),
          h('span', { class: 'name' }, name),
          ownReasons[`component:${region}/${name}`]
            ? h('span', { class: 'reason' }, ownReasons[`component:${region}/${name}`])
            : null,
          h(
            'ul',
            { class: 'dependencies' },
            Object.entries(component.dependencies ?? {}).map(([key, node]) =>
              h(
                'li',
                { class: `dependency ${node.color}`, 'data-color': node.color },
                dot(node.color),
                h('span', { class: 'name' }, key),
                node.color !== 'green' ? h('span', { class: 'reason' }, (node.reasons ?? []).join('; ')) : null,
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

/**
 * The tree of one region; components no flow needs are listed after the flows. `open` keeps the
 * checks' details open across redraws when the operator opened them.
 */
export function regionTree(regionName, region, flowComponents, ownReasons, open) {
  const components = region.components ?? {};
  const items = Object.entries(region.flows ?? {}).map(([name, flow]) =>
    flowItem(regionName, name, flow, components, flowComponents[name] ?? [], ownReasons),
  );
  const inFlows = new Set(Object.values(flowComponents).flat());
  const others = Object.keys(components).filter((name) => !inFlows.has(name));
  if (others.length > 0) {
    items.push(
      h(
        'li',
        { class: 'flow other' },
        h('span', { class: 'name' }, 'other components'),
        h('ul', { class: 'components' }, others.map((name) => chip(name, components[name]))),
      ),
    );
  }
  const details = checks(regionName, components, ownReasons);
  details.open = open;
  return h('div', {}, h('ul', { class: 'tree' }, items), details);
}

/** The region's own reason in one line, naming (not repeating) the causes found in it. */
export function regionReason(regionName, region, ownReasons, causes) {
  if (region.color === 'green') return 'healthy';
  const own = ownReasons[`region:${regionName}`] ?? region.color;
  const here = causes.filter((c) => c.region === regionName).map((c) => `${c.component} ${c.state}`);
  return here.length ? `${own} — cause: ${here.join(', ')}` : own;
}
