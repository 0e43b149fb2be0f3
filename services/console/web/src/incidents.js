// The incident timeline: state changes grouped by root cause, each with its start, end and duration.
import { clock, dot, duration, h } from './dom.js';

function incidentItem(incident) {
  const start = new Date(incident.start);
  const end = incident.end ? new Date(incident.end) : null;
  return h(
    'li',
    {
      class: `incident ${incident.open ? 'open' : 'closed'}`,
      'data-testid': 'incident',
      'data-open': incident.open,
      'data-causes': incident.causes.join(', '),
      'data-duration': incident.duration_seconds,
    },
    dot(incident.color),
    h('span', { class: 'name' }, incident.causes.join(', ')),
    h('time', { datetime: incident.start }, clock(start)),
    ' → ',
    end ? h('time', { datetime: incident.end }, clock(end)) : h('span', { class: 'ongoing' }, 'ongoing'),
    h('span', { class: 'duration', 'data-testid': 'incident-duration' }, duration(incident.duration_seconds)),
    h('span', { class: 'changes' }, `${incident.changes} state changes`),
  );
}

export function drawIncidents(list, view) {
  const items = view.incidents.map(incidentItem);
  list.replaceChildren(...(items.length ? items : [h('li', { class: 'empty' }, 'no incident in the last hour')]));
}
