// Service-window page: scan, verify through POST /v1/verify, show the verdict.
//
// A clerk's handheld scanner types the QR text and Enter into whatever has focus, so the
// scan input keeps focus: it is focused on load, after every check, when the clerk clicks
// the page background, and a key typed while something else has focus is moved into it.
// Every value from the node is put on the page with textContent, never as HTML: the
// holder fields come from a credential someone presented.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const scan = $('scan');
  const scanForm = $('scan-form');
  const result = $('result');
  const mark = $('mark');
  const verdictEl = $('verdict');
  const reasonEl = $('reason');
  const adviceEl = $('advice');
  const detailEl = $('detail');
  const licenceEl = $('licence');
  const holderBody = $('holder').tBodies[0];
  const factsBody = $('facts').tBodies[0];
  const nowEl = $('now');
  const nowTitle = $('now-title');
  const nowText = $('now-text');
  const historyCard = $('history-card');
  const historyList = $('history');
  const photo = $('photo');
  const pasteForm = $('paste-form');
  const pasteToggle = $('paste-toggle');
  const pasteText = $('paste');
  const cameraButton = $('camera');
  const cameraPanel = $('camera-panel');
  const video = $('video');

  const REQUEST_TIMEOUT_MS = 20000;
  const HEALTH_INTERVAL_MS = 15000;
  // Photos larger than this are scaled down in the browser before upload; the node takes
  // at most 10 MiB and a QR reads as well from 2400 pixels.
  const PHOTO_BYTES_SHRINK = 3 * 1024 * 1024;
  const PHOTO_SIDE_MAX = 2400;
  // A result (with the holder's details) is wiped after this long without a new check, so
  // the next person at the window does not see the last one's.
  const RESULT_KEEP_MS = 5 * 60 * 1000;
  // On a touch screen, focusing the input must not pop up the on-screen keyboard over the
  // result; a tap on the input brings it up. A scanner (a hardware keyboard) types anyway.
  const TOUCH = window.matchMedia && window.matchMedia('(pointer: coarse)').matches;

  // [Chinese, English] for each verdict family, reason and field. Reasons follow
  // core::verify::labels; the node's own message is shown below them as well.
  const VERDICTS = {
    valid: ['有效', 'VALID'],
    invalid: ['无效', 'INVALID'],
    undetermined: ['待定', 'UNDETERMINED'],
  };
  const REASONS = {
    revoked: ['已吊销/撤销/注销', 'revoked'],
    suspended: ['已暂扣', 'suspended'],
    expired: ['已过期', 'expired'],
    not_yet_valid: ['尚未生效', 'not yet valid'],
    unknown_issuer: ['发证机关未知', 'unknown issuer'],
    issuer_mismatch: ['发证机关不符', 'issuer mismatch'],
    bad_signature: ['签名错误，可能伪造', 'bad signature: possibly forged'],
    type_not_granted: ['发证机关无权签发此类证照', 'issuer may not issue this type'],
    region_mismatch: ['地区不符', 'region mismatch'],
    bad_validity: ['有效期超出该类证照的规定', 'validity period not allowed for its type'],
    commitment_mismatch: ['与账本记录不符', 'does not match the ledger'],
    not_recognised: ['本地区不互认此证照', 'not recognised in this region'],
    not_on_ledger: ['账本无此证照', 'not on the ledger'],
    superseded: ['此证已被新证取代', 'superseded by a newer card'],
    transferred: ['证照已转出至外地', 'transferred to another region'],
    key_compromised: ['签发密钥已泄露', 'signed with a compromised key'],
    key_not_in_force: ['签发密钥与签发时不符', 'key not in force at issuance'],
    chain_unknown: ['本节点尚无该发证机关账本', "issuer's chain not known here yet"],
    stale: ['本地数据过旧', 'local data is stale'],
    undecodable: ['无法识别', 'could not decode'],
    not_yet_seen: ['账本尚未同步此证照', 'not yet seen on the ledger'],
    equivocation: ['发证机关账本分叉', "issuer's chain is forked"],
  };
  const REVOKED = {
    penalty: ['已吊销', 'revoked (penalty)'],
    withdrawn: ['已撤销', 'revoked (withdrawn)'],
    cancelled: ['已注销', 'revoked (cancelled)'],
  };
  // The ledger's record kinds, as the history line names them.
  const KINDS = {
    issue: ['核发', 'issued'],
    transfer_in: ['转入', 'transferred in'],
    suspend: ['暂扣', 'suspended'],
    reinstate: ['发还', 'reinstated'],
    revoke: ['吊销/撤销/注销', 'revoked'],
    renew: ['延续', 'renewed'],
    reissue: ['补领/换证', 'reissued'],
    amend: ['变更', 'amended'],
    transfer_out: ['转出', 'transferred out'],
    annul: ['撤销原决定', 'decision annulled'],
  };
  const SUSPENDED = {
    penalty: ['行政处罚暂扣', 'penalty'],
    investigation: ['调查中', 'under investigation'],
    other: ['其他原因', 'other'],
  };
  const ADVICE = {
    valid: ['请核对持证人信息与本人一致', 'Compare the holder details with the person'],
    invalid: ['不予认可此证照', 'Do not accept this licence'],
    undetermined: ['暂无法确认：请稍后重试或联系发证机关', 'Cannot confirm now: try again later or contact the issuer'],
    undecodable: ['请重新扫描，或拍摄更清晰的照片', 'Scan again, or take a clearer photo'],
    error: ['尚未核验：请重试', 'Not checked: try again'],
  };
  // Holder fields are shown in this order, the rest after them as the credential has them.
  const HOLDER_FIRST = ['name', 'entity', 'id_number', 'credit_code'];
  // Labels of the licence's further fields, and of holder fields when a node's report
  // carries none: a holder field's label comes from the licence type in genesis
  // (`licence.labels` in the report) first.
  const FIELDS = {
    name: ['姓名', 'Name'],
    id_number: ['身份证号', 'ID number'],
    class: ['准驾车型', 'Class'],
    entity: ['经营者名称', 'Business name'],
    credit_code: ['统一社会信用代码', 'Credit code'],
    category: ['执业类别', 'Category'],
    national_id: ['全国证照标识', 'National licence id'],
    address: ['住址', 'Address'],
    birth_date: ['出生日期', 'Date of birth'],
    sex: ['性别', 'Sex'],
  };

  // --- small DOM helpers ------------------------------------------------------------

  // "中文 English": Chinese first, English in a span of its own.
  function bi(zh, en) {
    const f = document.createDocumentFragment();
    f.append(zh);
    if (en) {
      const s = document.createElement('span');
      s.className = 'en';
      s.lang = 'en';
      s.textContent = en;
      f.append(' ', s);
    }
    return f;
  }
  function set(el, ...parts) {
    el.replaceChildren(...parts);
  }
  function el(tag, className, ...children) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    e.append(...children);
    return e;
  }
  function row(body, label, ...value) {
    const th = el('th', '', bi(label[0], label[1]));
    th.scope = 'row';
    body.append(el('tr', '', th, el('td', '', ...value)));
  }
  function pad(n) {
    return String(n).padStart(2, '0');
  }
  function day(s) {
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) return String(s || '');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }
  function stamp(s) {
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) return String(s || '');
    return `${day(s)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  // --- focus: the scanner types into whatever has focus ---------------------------------

  function refocus() {
    if (!cameraPanel.hidden) return;
    if (document.activeElement !== scan) scan.focus({ preventScroll: true });
  }

  function isTextEntry(t) {
    return t instanceof HTMLTextAreaElement ||
      (t instanceof HTMLInputElement && t.type !== 'file' && t.type !== 'button' && t.type !== 'submit');
  }

  // A key pressed while focus is elsewhere (the page background, a button the clerk just
  // clicked) goes to the scan input, so a scan is never lost or sent to a button.
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.isComposing || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (e.key === 'Escape') {
      if (!cameraPanel.hidden) closeCamera();
      else if (t !== pasteText) clearAll();
      return;
    }
    if (t === scan || isTextEntry(t) || !cameraPanel.hidden) return;
    const onControl = t instanceof Element && t.closest('button, a, label, summary, select, input');
    if (e.key.length === 1) {
      // A clerk tabbing to a button presses Space to use it; anything else is typing.
      if (onControl && e.key === ' ') return;
      e.preventDefault();
      scan.focus({ preventScroll: true });
      scan.value += e.key;
    } else if (e.key === 'Enter' && !onControl) {
      e.preventDefault();
      scan.focus({ preventScroll: true });
      submitScan();
    }
  });

  // A click on the page background (not on a control, not selecting text) gives focus back.
  document.addEventListener('click', (e) => {
    const t = e.target;
    if (t instanceof Element && t.closest('input, textarea, button, a, label, select, summary, video, .paste')) return;
    const sel = window.getSelection();
    if (sel && !sel.isCollapsed) return;
    refocus();
  });
  window.addEventListener('focus', () => {
    if (document.activeElement === document.body || document.activeElement === null) refocus();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refocus();
  });

  // --- the result -----------------------------------------------------------------------

  let seq = 0; // the number of the latest check; an older answer is never shown
  let wipeTimer = 0;

  function keepFor(n) {
    clearTimeout(wipeTimer);
    wipeTimer = setTimeout(() => {
      if (n === seq) clearAll();
    }, RESULT_KEEP_MS);
  }

  function show(kind, verdict, reason, advice) {
    result.dataset.verdict = kind;
    mark.setAttribute('href', `#i-${kind === 'checking' ? 'idle' : kind}`);
    set(verdictEl, bi(verdict[0], verdict[1]));
    set(reasonEl, ...(reason ? [bi(reason[0], reason[1])] : []));
    reasonEl.hidden = !reason;
    set(adviceEl, ...(advice ? [bi(advice[0], advice[1])] : []));
  }

  // Nothing of the previous person stays on screen once a new check starts.
  function forgetLicence() {
    licenceEl.hidden = true;
    holderBody.replaceChildren();
    factsBody.replaceChildren();
    nowEl.hidden = true;
    nowTitle.replaceChildren();
    nowText.replaceChildren();
    historyCard.hidden = true;
    historyList.replaceChildren();
    detailEl.hidden = true;
    detailEl.replaceChildren();
  }

  function begin() {
    clearTimeout(wipeTimer);
    seq += 1;
    forgetLicence();
    result.dataset.scan = String(seq);
    result.dataset.reason = '';
    show('checking', ['核验中…', 'CHECKING…'], null, null);
    return seq;
  }

  function clearAll() {
    clearTimeout(wipeTimer);
    seq += 1;
    forgetLicence();
    result.dataset.scan = String(seq);
    result.dataset.reason = '';
    show('idle', ['等待扫码', 'READY TO SCAN'], null, ['请扫描证照二维码', 'Scan the licence QR code']);
    scan.value = '';
    pasteText.value = '';
    refocus();
  }

  function reasonLabel(report) {
    const status = report.ledger && report.ledger.status;
    if (report.reason === 'revoked' && status && REVOKED[status.reason]) return REVOKED[status.reason];
    if (report.reason === 'suspended' && status && SUSPENDED[status.reason]) {
      const r = SUSPENDED[status.reason];
      return [`已暂扣（${r[0]}）`, `suspended (${r[1]})`];
    }
    if (REASONS[report.reason]) return REASONS[report.reason];
    // A reason this page does not know yet: the node's own labels, minus the family.
    const zh = String(report.message_zh || '').replace(/^[^：]*：/, '');
    const en = String(report.message || '').replace(/^[^:]*:\s*/, '');
    return [zh || String(report.reason), en];
  }

  function render(report, n) {
    if (n !== seq) return;
    const family = VERDICTS[report.verdict] ? report.verdict : null;
    if (!family) {
      showError(n, ['节点答复无法理解', 'the node gave an answer this page does not understand'], String(report.verdict));
      return;
    }
    const lic = report.licence;
    let reason = null;
    if (family === 'valid') {
      if (lic) reason = [lic.type_name || lic.licence_type, lic.type_name_en];
    } else {
      reason = reasonLabel(report);
    }
    let advice = report.reason === 'undecodable' ? ADVICE.undecodable : ADVICE[family];
    if (report.offline) {
      advice = [`${advice[0]}（离线核验，未查吊销）`, `${advice[1]} (checked offline: revocation not checked)`];
    }
    result.dataset.reason = report.reason || '';
    show(family, VERDICTS[family], reason, advice);

    const detail = [`核验时间 ${stamp(report.checked_at)}`];
    if (report.verifier_region) detail.push(`核验地区 region ${report.verifier_region}`);
    // What the answer rests on: the issuer's witnessed checkpoint, and how old it is.
    const asOf = report.as_of;
    if (asOf) {
      detail.push(`数据截至 ${stamp(asOf.time)} · data as of ${stamp(asOf.time)} (${asOf.department} #${asOf.height})`);
    }
    if (asOf && asOf.freshness !== 'fresh') {
      advice = [`${advice[0]}（数据已过时，截至 ${stamp(asOf.time)}）`, `${advice[1]} (data is old: as of ${stamp(asOf.time)})`];
      show(family, VERDICTS[family], reason, advice);
      result.dataset.stale = 'true';
    } else {
      delete result.dataset.stale;
    }
    if (family !== 'valid') {
      if (report.message_zh) detail.push(report.message_zh);
      if (report.message) detail.push(report.message);
    }
    detailEl.textContent = detail.join(' · ');
    detailEl.hidden = false;

    if (lic) showLicence(report, lic);
    showNow(report);
    showHistory(report.lineage);
    keepFor(n);
  }

  // For a superseded or transferred card: where the licence stands now, in words a clerk
  // acts on (which card to ask for, or where the licence went).
  function showNow(report) {
    const lineage = report.lineage;
    if (report.reason === 'transferred') {
      const t = lineage && lineage.transfer;
      set(nowTitle, bi('此证已转出，现由外地发证机关管理', 'This licence moved to another region'));
      if (t) {
        const where = `${t.to_name || t.to}（${t.to_region_name || ''} ${t.to_region || ''}）`;
        const whereEn = `${t.to_name || t.to} (${t.to_region || ''})`;
        if (t.accepted_as) {
          set(nowText,
            bi(`现为 ${where} 证照 `, ''), el('span', 'mono', t.accepted_as),
            bi('，请持证人出示新证', ''),
            el('span', 'en', ` Now licence ${t.accepted_as} at ${whereEn}: ask for the new card.`));
        } else {
          set(nowText, bi(`已转往 ${where}，新证尚未签发`, `Transferred to ${whereEn}; the new licence is not issued yet`));
        }
      }
      nowEl.dataset.kind = 'transferred';
      nowEl.hidden = false;
    } else if (report.reason === 'superseded') {
      const last = lineage && lineage.history && [...lineage.history].reverse().find((h) => ['renew', 'reissue', 'amend'].includes(h.kind));
      const how = last && KINDS[last.kind] ? KINDS[last.kind] : ['换发', 'replaced'];
      const status = report.ledger && report.ledger.status ? report.ledger.status.status : '';
      const state = status === 'active' ? ['正常', 'active'] : status === 'suspended' ? ['暂扣中', 'suspended'] : status === 'revoked' ? ['已吊销', 'revoked'] : [status, status];
      set(nowTitle, bi('此证已作废，已有新证', 'This card was replaced by a newer one'));
      set(nowText, bi(
        `${last ? day(last.time) : ''} ${how[0]}，证照现状：${state[0]}。请持证人出示最新证照（编号 ${lineage ? lineage.licence_id : ''}）`,
        `${how[1]} ${last ? day(last.time) : ''}; the licence is ${state[1]} now. Ask for the newest card (licence ${lineage ? lineage.licence_id : ''}).`));
      nowEl.dataset.kind = 'superseded';
      nowEl.hidden = false;
    }
  }

  // The licence's records on the ledger, oldest first: one line each.
  function showHistory(lineage) {
    if (!lineage || !Array.isArray(lineage.history) || !lineage.history.length) return;
    for (const h of lineage.history) {
      const kind = KINDS[h.kind] || [String(h.kind), String(h.kind)];
      let label = kind;
      if (h.kind === 'revoke' && REVOKED[h.reason]) label = REVOKED[h.reason];
      const parts = [el('span', 'when', day(h.time)), bi(label[0], label[1])];
      if (h.kind === 'suspend' && h.until) parts.push(` 至 until ${day(h.until)}`);
      if ((h.kind === 'issue' || h.kind === 'renew' || h.kind === 'transfer_in') && h.valid_until) parts.push(` · 有效期至 valid until ${day(h.valid_until)}`);
      if (h.to) parts.push(' → ', el('span', 'mono', h.to));
      if (h.origin) parts.push(' ← ', el('span', 'mono', h.origin));
      parts.push(el('span', 'sub', ` #${h.height}`));
      const li = el('li', h.annulled ? 'annulled' : '', ...parts);
      li.dataset.kind = h.kind;
      historyList.append(li);
    }
    historyCard.hidden = false;
  }

  function showLicence(report, lic) {
    const holder = lic.holder || {};
    const labels = lic.labels || {};
    const label = (key) => (labels[key] ? [labels[key].zh, labels[key].en] : FIELDS[key] || [key, '']);
    const rank = (k) => (HOLDER_FIRST.includes(k) ? HOLDER_FIRST.indexOf(k) : HOLDER_FIRST.length);
    for (const key of Object.keys(holder).sort((a, b) => rank(a) - rank(b))) {
      row(holderBody, label(key), String(holder[key]));
    }
    if (!holderBody.rows.length) row(holderBody, ['持证人', 'Holder'], '—');

    // What decides acceptance first: the period and the ledger; then who issued what.
    row(factsBody, ['有效期', 'Validity'], `${day(lic.valid_from)} 至 ${day(lic.valid_until)}`, validityNote(lic));
    row(factsBody, ['账本状态', 'Ledger'], ...ledgerCell(report.ledger));
    row(factsBody, ['发证机关', 'Issuer'], lic.issuer_name || lic.issuer, el('span', 'sub', lic.issuer));
    row(factsBody, ['发证地区', 'Region'], lic.region_name || lic.region, el('span', 'sub', lic.region));
    row(factsBody, ['证照', 'Type'], lic.type_name || lic.licence_type, el('span', 'sub', lic.type_name_en || ''));
    row(factsBody, ['编号', 'Licence id'], el('span', 'mono', lic.id));
    const fields = lic.fields || {};
    for (const key of Object.keys(fields)) {
      row(factsBody, FIELDS[key] || [key, ''], String(fields[key]));
    }
    row(factsBody, ['签发时间', 'Issued'], stamp(lic.issued_at));
    licenceEl.hidden = false;
  }

  function validityNote(lic) {
    const now = Date.now();
    const from = Date.parse(lic.valid_from);
    const until = Date.parse(lic.valid_until);
    if (Number.isNaN(from) || Number.isNaN(until)) return '';
    if (now < from) return el('span', 'sub warn', '尚未生效 not yet valid');
    if (now >= until) return el('span', 'sub warn', '已过期 expired');
    const days = Math.floor((until - now) / 86400000);
    return el('span', 'sub', `剩余 ${days} 天 days left`);
  }

  function ledgerCell(ledger) {
    if (!ledger) return [el('span', 'status-none', '本节点账本无记录 not on the ledger here')];
    const s = ledger.status || {};
    let label;
    if (s.status === 'active') label = ['正常', 'active'];
    else if (s.status === 'transferred') label = ['已转出', 'transferred out'];
    else if (s.status === 'revoked') label = REVOKED[s.reason] || ['已吊销/撤销/注销', 'revoked'];
    else if (s.status === 'suspended') {
      const r = SUSPENDED[s.reason] || [String(s.reason || ''), String(s.reason || '')];
      label = [`已暂扣（${r[0]}）`, `suspended (${r[1]})`];
    } else label = [String(s.status), ''];
    const heights = ledger.updated_height !== ledger.issued_height
      ? `区块 block #${ledger.issued_height} → #${ledger.updated_height}`
      : `区块 block #${ledger.issued_height}`;
    return [el('span', `status-${s.status || 'none'}`, bi(label[0], label[1])), el('span', 'sub', heights)];
  }

  function showError(n, what, detail) {
    if (n !== seq) return;
    forgetLicence();
    result.dataset.reason = '';
    show('error', ['未核验', 'NOT CHECKED'], what, ADVICE.error);
    if (detail) {
      detailEl.textContent = detail;
      detailEl.hidden = false;
    }
    keepFor(n);
  }

  // --- talking to the node ------------------------------------------------------------

  async function verify(n, init) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    let response;
    try {
      response = await fetch('/v1/verify?history=1', { method: 'POST', cache: 'no-store', signal: abort.signal, ...init });
    } catch (e) {
      const what = abort.signal.aborted
        ? ['节点未及时答复', 'the node did not answer in time']
        : ['无法连接节点', 'cannot reach the node'];
      showError(n, what, String(e && e.message ? e.message : e));
      setConnection(false);
      return;
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (response.ok && body && body.verdict) {
      setConnection(true);
      render(body, n);
      return;
    }
    const code = body && body.error ? body.error.code : '';
    const message = body && body.error ? body.error.message : '';
    let what;
    if (response.status === 429) what = ['核验过于频繁', 'too many checks: wait a moment'];
    else if (response.status === 413 || code === 'body_too_large') what = ['图片或文本过大', 'the picture or text is too large'];
    else if (response.status >= 500) what = ['节点出错', 'the node failed'];
    else what = ['请求被拒绝', 'the node refused the request'];
    showError(n, what, `HTTP ${response.status} ${code} ${message}`.trim());
  }

  function submitText(text) {
    const qr = String(text || '').trim();
    if (!qr) return;
    const n = begin();
    verify(n, { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ qr }) });
  }

  function submitScan() {
    const text = scan.value;
    // Cleared at once, so the next scan starts empty even while this one is checked.
    scan.value = '';
    if (TOUCH) scan.inputMode = 'none';
    refocus();
    submitText(text);
  }

  async function shrink(file) {
    if (file.size <= PHOTO_BYTES_SHRINK || typeof createImageBitmap !== 'function') return file;
    try {
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(1, PHOTO_SIDE_MAX / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement('canvas');
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.92));
      return blob || file;
    } catch (e) {
      return file;
    }
  }

  async function submitImage(file) {
    if (!file) return;
    const n = begin();
    if (!/^image\/(png|jpeg)$/.test(file.type)) {
      showError(n, ['请上传 PNG 或 JPEG 图片', 'upload a PNG or JPEG picture'], file.type || file.name);
      return;
    }
    const image = await shrink(file);
    if (n !== seq) return;
    const form = new FormData();
    form.append('image', image, file.name || 'qr.jpg');
    verify(n, { body: form });
  }

  scanForm.addEventListener('submit', (e) => {
    e.preventDefault();
    submitScan();
  });
  // Some scanners end with Tab instead of Enter.
  scan.addEventListener('keydown', (e) => {
    if (e.key === 'Tab' && !e.shiftKey && /^HZ1:/i.test(scan.value.trim())) {
      e.preventDefault();
      submitScan();
    }
  });

  photo.addEventListener('change', () => {
    const file = photo.files && photo.files[0];
    photo.value = '';
    refocus();
    submitImage(file);
  });

  pasteToggle.addEventListener('click', () => {
    const open = pasteForm.hidden;
    pasteForm.hidden = !open;
    pasteToggle.setAttribute('aria-expanded', String(open));
    if (open) pasteText.focus();
    else refocus();
  });
  pasteForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = pasteText.value;
    pasteText.value = '';
    pasteForm.hidden = true;
    pasteToggle.setAttribute('aria-expanded', 'false');
    refocus();
    submitText(text);
  });
  pasteText.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      pasteForm.requestSubmit();
    }
  });

  $('clear').addEventListener('click', clearAll);

  // A picture of a QR pasted or dropped anywhere on the page is checked; pasted text lands
  // in the scan input as typed text does.
  document.addEventListener('paste', (e) => {
    const data = e.clipboardData;
    if (!data) return;
    const file = Array.from(data.files || []).find((f) => f.type.startsWith('image/'));
    if (file) {
      e.preventDefault();
      submitImage(file);
      return;
    }
    if (isTextEntry(e.target)) return;
    const text = data.getData('text/plain');
    if (text) {
      e.preventDefault();
      scan.focus({ preventScroll: true });
      scan.value = text.trim();
    }
  });
  document.addEventListener('dragover', (e) => {
    if (e.dataTransfer && Array.from(e.dataTransfer.types).includes('Files')) e.preventDefault();
  });
  document.addEventListener('drop', (e) => {
    const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (!file) return;
    e.preventDefault();
    refocus();
    submitImage(file);
  });

  // --- camera: only where the browser can read QR codes itself ---------------------------

  let camera = null;

  async function initCamera() {
    if (!('BarcodeDetector' in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (!formats.includes('qr_code')) return;
    } catch (e) {
      return;
    }
    cameraButton.hidden = false;
  }

  function closeCamera() {
    if (camera) {
      clearTimeout(camera.timer);
      camera.stream.getTracks().forEach((t) => t.stop());
      camera = null;
    }
    video.srcObject = null;
    cameraPanel.hidden = true;
    refocus();
  }

  async function openCamera() {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
      const detector = new window.BarcodeDetector({ formats: ['qr_code'] });
      camera = { stream, detector, timer: 0 };
      video.srcObject = stream;
      cameraPanel.hidden = false;
      $('camera-close').focus();
      await video.play();
      const tick = async () => {
        if (!camera) return;
        try {
          const codes = await detector.detect(video);
          if (camera && codes.length) {
            const text = codes[0].rawValue;
            closeCamera();
            submitText(text);
            return;
          }
        } catch (e) {
          // A frame that cannot be read yet; try the next one.
        }
        if (camera) camera.timer = setTimeout(tick, 200);
      };
      tick();
    } catch (e) {
      closeCamera();
      showError(begin(), ['无法打开摄像头', 'the camera could not be opened'], String(e && e.message ? e.message : e));
    }
  }

  cameraButton.addEventListener('click', openCamera);
  $('camera-close').addEventListener('click', closeCamera);

  // --- the node: who it is and whether it answers --------------------------------------

  const conn = $('conn');
  function setConnection(up) {
    conn.dataset.state = up ? 'up' : 'down';
    $('conn-text').textContent = up ? '节点在线 online' : '节点无法连接 node unreachable';
  }

  async function health() {
    try {
      const r = await fetch('/healthz', { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const h = await r.json();
      $('node-department').textContent = h.department || 'observer';
      $('node-region').textContent = h.region || '';
      setConnection(true);
    } catch (e) {
      setConnection(false);
    }
  }

  if (TOUCH) {
    scan.inputMode = 'none';
    scan.addEventListener('pointerdown', () => {
      scan.inputMode = 'text';
    });
  }
  health();
  setInterval(health, HEALTH_INTERVAL_MS);
  initCamera();
  refocus();
})();
