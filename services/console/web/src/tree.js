// The health model drawn as one card per region: region → user flows → components → dependencies.
import { dot, h } from './dom.js';

function reasonText(node) {
  return (node.reasons ?? []).join('; ');
}

function dependencyItem(name, node) {
  return h(
    'li',
    { class: `dependency ${node.color}`, 'data-color': node.color, title: reasonText(node) || 'green' },
    dot(node.color),
    h('span', { class: 'name' }, name),
    node.color !== 'green' ? h('span', { class: 'reason' }, reasonText(node)) : null,
  );
}

function componentItem(name, component) {
  if (!component) {
    return h(
      'li',
      { class: 'component red', 'data-color': 'red' },
      dot('red'),
      h('span', { class: 'name' }, name),
      h('span', { class: 'reason' }, 'no service reports it'),
    );
  }
  const dependencies = Object.entries(component.dependencies ?? {});
  return h(
    'li',
    { class: `component ${component.color}`, 'data-color': component.color },
    dot(component.color),
    h('span', { class: 'name' }, name),
    component.color !== 'green' ? h('span', { class: 'reason' }, reasonText(component)) : null,
    h('ul', { class: 'dependencies' }, dependencies.map(([key, node]) => dependencyItem(key, node))),
  );
}

function flowItem(name, flow, components, needed) {
  return h(
    'li',
    { class: `flow ${flow.color}`, 'data-color': flow.color, 'data-testid': `flow-${name}` },
    dot(flow.color),
    h('span', { class: 'name' }, name.replaceAll('_', ' ')),
    flow.color !== 'green' ? h('span', { class: 'reason' }, reasonText(flow)) : null,
    h('ul', { class: 'components' }, needed.map((component) => componentItem(component, components[component]))),
  );
}

/** The tree of one region; components no flow needs are listed after the flows. */
export function regionTree(region, flowComponents) {
  const components = region.components ?? {};
  const items = Object.entries(region.flows ?? {}).map(([name, flow]) =>
    flowItem(name, flow, components, flowComponents[name] ?? []),
  );
  const inFlows = new Set(Object.values(flowComponents).flat());
  const others = Object.keys(components).filter((name) => !inFlows.has(name));
  if (others.length > 0) {
    items.push(
      h(
        'li',
        { class: 'flow other' },
        h('span', { class: 'name' }, 'other components'),
        h('ul', { class: 'components' }, others.map((name) => componentItem(name, components[name]))),
      ),
    );
  }
  return h('ul', { class: 'tree' }, items);
}

/** Region reasons in one line; "unreachable" comes first when a service does not answer. */
export function regionReason(region) {
  if (region.color === 'green') return 'healthy';
  const text = reasonText(region);
  const unreachable = Object.values(region.components ?? {}).some((c) =>
    Object.values(c.dependencies ?? {}).some((d) => (d.reasons ?? []).some((r) => r.startsWith('unreachable'))),
  );
  return unreachable && !text.startsWith('unreachable') ? `unreachable — ${text}` : text;
}
