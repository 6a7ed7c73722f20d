// tenants.js: the Tenants page (#/tenants, admin only): every tenant's URL signing, signing
// keys, allowed Referers and API keys, and a form for a new tenant.

import { h, replace, announce, field, errorBox } from './dom.js';
import { session, request, errorText } from './api.js';

export const title = 'Tenants';
const enc = encodeURIComponent;

/// Draws the tenant table into `main` (or a note for a tenant key).
export async function render(main, { signal }) {
  if (!session.isAdmin) {
    replace(main, h('h1', { text: 'Tenants' }), h('p', { text: 'Only the admin token manages tenants. You are signed in with a tenant key.' }));
    return;
  }
  const secret = h('output', { id: 'tn-secret' });
  const secretLabel = h('p', { class: 'notice-title' });
  const secretBox = h('div', { class: 'notice warn', hidden: true, tabindex: -1 }, secretLabel, h('p', {}, secret), h('p', { text: 'Shown only now: copy it into your signer. It cannot be shown again.' }));
  const newKey = h('output', { id: 'tn-new-key' });
  const newKeyLabel = h('p', { class: 'notice-title' });
  const newKeyBox = h('div', { class: 'notice warn', hidden: true, tabindex: -1 }, newKeyLabel, h('p', {}, newKey), h('p', { text: 'Shown only now: give it to the tenant’s backend. Only its hash is stored.' }));
  const errorSlot = h('div');
  const table = h('table', { id: 'tenants', class: 'data tenants' });
  const newId = h('input', { id: 'tn-new-id', type: 'text', required: true, pattern: '[a-z0-9][a-z0-9\\-]{0,62}', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. acme' });
  const newForm = h('form', { id: 'tn-new', class: 'inline-form' }, field('New tenant id', newId), h('button', { type: 'submit', class: 'btn', text: 'Create tenant' }));
  replace(main,
    h('h1', { text: 'Tenants' }),
    h('p', { class: 'muted', text: 'Signing, signing keys and allowed Referers are enforced at the edge; API keys let a tenant’s backend call the API.' }),
    errorSlot, secretBox, newKeyBox, newForm,
    h('div', { class: 'table-wrap' }, table));

  let tenants = (await request('/api/v1/tenants', { signal })).tenants;

  const reveal = (box, label, out, labelText, value) => {
    label.textContent = labelText;
    out.textContent = value;
    box.hidden = false;
    box.focus();
    announce(`${labelText} shown once`);
  };
  const fail = (e) => replace(errorSlot, errorBox(errorText(e)));
  const reload = async () => { tenants = (await request('/api/v1/tenants', { signal })).tenants; draw(); };
  const patch = async (id, body, message) => {
    const view = await request(`/api/v1/tenants/${enc(id)}`, { method: 'PATCH', body, signal });
    tenants = tenants.map((t) => (t.tenant === id ? view : t));
    draw();
    announce(message);
    return view;
  };
  // Runs an action, showing its error above the table.
  const act = (fn) => async (ev) => {
    ev?.preventDefault?.();
    errorSlot.replaceChildren();
    try { await fn(ev); } catch (e) { fail(e); }
  };

  function draw() {
    const focused = document.activeElement?.dataset?.fid;
    replace(table,
      h('caption', { class: 'sr-only', text: 'Tenants' }),
      h('thead', {}, h('tr', {}, ['Tenant', 'Signing', 'Signing keys', 'Referers', 'API keys'].map((c) => h('th', { scope: 'col', text: c })))),
      h('tbody', {}, tenants.map(row)));
    if (!focused) return;
    // Back to the same control, else (it was removed) to the first control of the same tenant.
    const sel = (f, op = '=') => table.querySelector(`[data-fid${op}"${CSS.escape(f)}"]`);
    (sel(focused) || sel(`${focused.split(':')[0]}:`, '^='))?.focus();
  }

  function row(t) {
    const id = t.tenant;
    const sign = h('input', { type: 'checkbox', class: 'tn-sign', id: `tn-sign-${id}`, checked: t.sign, 'data-fid': `${id}:sign` });
    sign.addEventListener('change', act(async () => {
      if (sign.checked && !confirm(`Require signed URLs for ${id}? Every unsigned URL of ${id} is refused from now on.`)) { sign.checked = false; return; }
      try { await patch(id, { sign: sign.checked }, `Signing ${sign.checked ? 'on' : 'off'} for ${id}`); } catch (e) { sign.checked = !sign.checked; throw e; }
    }));
    const kid = h('input', { type: 'text', class: 'tn-kid', 'aria-label': `New signing key id for ${id}`, placeholder: 'key id', pattern: '[A-Za-z0-9_\\-]{1,64}', required: true, 'data-fid': `${id}:kid` });
    const referer = h('input', { type: 'text', class: 'tn-referer', 'aria-label': `New Referer host for ${id}`, placeholder: 'shop.example.com', required: true, 'data-fid': `${id}:ref` });
    const keyForm = h('form', { class: 'mini-form' }, kid, h('button', { type: 'submit', class: 'btn small', text: 'Add key', 'data-fid': `${id}:addkey` }));
    keyForm.addEventListener('submit', act(async () => {
      const k = kid.value.trim();
      const view = await patch(id, { add_key: k }, `Key ${k} added to ${id}`);
      if (view.secret) reveal(secretBox, secretLabel, secret, `Signing secret of key ${k} (tenant ${id}):`, view.secret);
    }));
    const refForm = h('form', { class: 'mini-form' }, referer, h('button', { type: 'submit', class: 'btn small', text: 'Add', 'data-fid': `${id}:addref` }));
    refForm.addEventListener('submit', act(() => patch(id, { add_referer: referer.value.trim() }, `Referer ${referer.value.trim()} allowed for ${id}`)));
    const newApiKey = h('button', { type: 'button', class: 'btn small', text: 'New API key', 'data-fid': `${id}:newapi` });
    newApiKey.addEventListener('click', act(async () => {
      const made = await request(`/api/v1/tenants/${enc(id)}/api-keys`, { method: 'POST', signal });
      await reload();
      reveal(newKeyBox, newKeyLabel, newKey, `API key ${made.kid} for tenant ${id}:`, made.key);
    }));
    const removeBtn = (text, label, fid, question, fn) => {
      const b = h('button', { type: 'button', class: 'btn small danger', text, 'aria-label': label, 'data-fid': fid });
      b.addEventListener('click', act(async () => { if (confirm(question)) await fn(); }));
      return b;
    };
    const keys = t.keys || [];
    const apiKeys = t.api_keys || [];
    const referers = t.referers || [];
    return h('tr', { 'data-tenant': id },
      h('th', { scope: 'row', 'data-label': 'Tenant' }, h('span', { class: 'tn-id', text: id }), h('span', { class: 'muted small', text: `on-demand: ${t.on_demand ?? '—'}` })),
      h('td', { 'data-label': 'Signing' }, h('div', { class: 'check' }, sign, h('label', { for: sign.id, text: t.sign ? 'on' : 'off' }))),
      h('td', { 'data-label': 'Signing keys' },
        h('ul', { class: 'chips' }, keys.map((k) => h('li', {}, h('code', { text: k }),
          removeBtn('Retire', `Retire signing key ${k} of ${id}`, `${id}:retire:${k}`, `Retire signing key ${k} of ${id}? URLs signed with it stop working.`,
            () => patch(id, { retire_key: k }, `Key ${k} retired`))))),
        keyForm),
      h('td', { 'data-label': 'Referers' },
        referers.length ? null : h('p', { class: 'muted small', text: 'any site' }),
        h('ul', { class: 'chips' }, referers.map((r) => h('li', {}, h('code', { text: r }),
          removeBtn('Remove', `Remove Referer ${r} of ${id}`, `${id}:unref:${r}`, `Stop allowing ${r} to embed ${id}'s images?`,
            () => patch(id, { remove_referer: r }, `Referer ${r} removed`))))),
        refForm),
      h('td', { 'data-label': 'API keys' },
        h('ul', { class: 'chips' }, apiKeys.map((k) => h('li', {}, h('code', { text: k.kid }), h('span', { class: 'muted small', text: k.created_at || '' }),
          removeBtn('Remove', `Remove API key ${k.kid} of ${id}`, `${id}:unapi:${k.kid}`, `Remove API key ${k.kid} of ${id}? Backends using it are refused at once.`,
            async () => { await request(`/api/v1/tenants/${enc(id)}/api-keys/${enc(k.kid)}`, { method: 'DELETE', signal }); await reload(); announce(`API key ${k.kid} removed`); })))),
        newApiKey));
  }

  newForm.addEventListener('submit', act(async () => {
    const id = newId.value.trim();
    const view = await request('/api/v1/tenants', { method: 'POST', body: { tenant: id }, signal });
    tenants = [...tenants.filter((t) => t.tenant !== id), view].sort((a, b) => (a.tenant < b.tenant ? -1 : 1));
    draw();
    newId.value = '';
    announce(`Tenant ${id} created`);
    window.dispatchEvent(new CustomEvent('pf:tenants-changed'));
  }));
  draw();
}
