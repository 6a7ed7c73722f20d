// takedown.js: the Takedown page (#/takedown?key=…): request the takedown or erasure of a key or
// a prefix, follow the request until it settles, and show its summary and audit records.

import { h, replace, announce, field, sleep, isAbort } from './dom.js';
import { session, tenantRequest, errorText } from './api.js';

export const title = 'Takedown';

/// Draws the takedown form into `main`; `params.key` (or `params.prefix`) prefills it.
export function render(main, { params, signal }) {
  const opt = (value, text) => h('option', { value, text });
  const key = h('input', { id: 'td-key', type: 'text', required: true, spellcheck: 'false', autocomplete: 'off', value: params.get('key') || params.get('prefix') || null });
  const scope = h('select', { id: 'td-scope' }, opt('key', 'this key'), opt('prefix', 'every key starting with it'));
  scope.value = params.get('prefix') ? 'prefix' : 'key';
  const action = h('select', { id: 'td-action' }, opt('takedown', 'take down'), opt('erase', 'erase (GDPR Art. 17)'));
  const reason = h('select', { id: 'td-reason' }, opt('tenant', 'tenant (our own decision)'),
    session.isAdmin ? [opt('dmca', 'dmca (a copyright notice)'), opt('gdpr', 'gdpr (an erasure request)')] : null);
  const requester = h('input', { id: 'td-requester', type: 'text', autocomplete: 'off', placeholder: session.isAdmin ? 'e.g. notice 2026-1142 via legal@example.com' : 'default: this API key' });
  const confirmBox = h('input', { id: 'td-confirm', type: 'checkbox', required: true });
  const submit = h('button', { id: 'td-submit', type: 'submit', class: 'btn danger', text: 'Remove' });
  const status = h('p', { id: 'td-status', class: 'td-status', hidden: true });
  const requestId = h('p', { class: 'muted', hidden: true });
  const result = h('div', { id: 'td-result' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });

  const form = h('form', { id: 'td-form', class: 'card td-form' },
    h('div', { class: 'two' }, field('Key or prefix', key), field('Applies to', scope)),
    h('div', { class: 'two' }, field('Action', action), field('Reason', reason)),
    field('Requester', requester, 'Who asked, for the audit record.'),
    h('div', { class: 'check' }, confirmBox,
      h('label', { for: 'td-confirm', text: 'I understand that this removes every version, every variant and every cached copy, and cannot be undone.' })),
    error,
    h('div', { class: 'row' }, submit));
  replace(main,
    h('h1', { text: 'Takedown and erasure' }),
    h('p', { class: 'muted', text: `Remove assets of tenant ${session.tenant}. Delivery answers 404 at once; an audit record proves what was removed and when.` }),
    form,
    h('section', { class: 'td-outcome', 'aria-label': 'Request' }, requestId, status, result));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const body = { [scope.value]: key.value.trim(), action: action.value, reason: reason.value };
    if (requester.value.trim()) body.requester = requester.value.trim();
    submit.disabled = true;
    result.replaceChildren();
    try {
      const started = await tenantRequest('/takedowns', { method: 'POST', body, signal });
      requestId.textContent = `Request ${started.request_id}`;
      requestId.hidden = false;
      let answer = await follow(started.request_id, status, signal);
      while (answer.status === 'in_progress') {
        await sleep(1500, signal);
        answer = await follow(started.request_id, status, signal);
      }
      showResult(result, answer);
      announce(`Request ${started.request_id}: ${answer.status}`);
      confirmBox.checked = false;
    } catch (e) {
      if (isAbort(e)) return;
      error.textContent = errorText(e);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
}

async function follow(id, status, signal) {
  const answer = await tenantRequest(`/takedowns/${encodeURIComponent(id)}`, { signal });
  status.textContent = answer.status;
  status.dataset.status = answer.status;
  status.hidden = false;
  return answer;
}

/// A value as a table cell: plain values as text, lists of plain values joined, anything else
/// as collapsible JSON.
function cell(v) {
  if (v == null || v === '') return '—';
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v) && v.every((x) => x === null || typeof x !== 'object')) return v.length ? v.join(', ') : '—';
  const label = Array.isArray(v) ? `${v.length} item${v.length === 1 ? '' : 's'}` : 'details';
  return h('details', {}, h('summary', { text: label }), h('pre', { class: 'code', text: JSON.stringify(v, null, 2) }));
}

/// A record as a two-column table: one row per field, whatever fields it has.
function fieldsTable(obj, caption) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'data fields' },
    h('caption', { text: caption }),
    h('tbody', {}, Object.entries(obj).map(([k, v]) => h('tr', {}, h('th', { scope: 'row', text: k.replace(/_/g, ' ') }), h('td', {}, cell(v)))))));
}

function showResult(el, answer) {
  const records = Array.isArray(answer.records) ? answer.records : [];
  const summary = answer.summary && typeof answer.summary === 'object'
    ? fieldsTable(answer.summary, `Request ${answer.request_id}`)
    : h('p', { text: answer.summary == null ? '—' : String(answer.summary) });
  replace(el,
    h('h2', { text: 'Summary' }), summary,
    h('h2', { text: `Audit records (${records.length})` }),
    records.length
      ? h('div', { class: 'records' }, records.map((r, i) => fieldsTable(r, `Record ${i + 1}${r.key ? `: ${r.key}` : ''}`)))
      : h('p', { class: 'muted', text: 'No audit records.' }));
}
