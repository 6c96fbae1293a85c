// Small DOM helpers: elements from plain calls (no HTML strings, so no injection), form fields
// with labels and error slots, and problem+json shown where the user is looking.

/**
 * @param {string} tag
 * @param {Record<string, unknown> | null} [attributes] `on*` functions become listeners; `true` is an empty attribute
 * @param {...(Node | string | number | null | undefined | false | (Node | string | null | undefined | false)[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attributes, ...children) {
  return build(document.createElement(tag), attributes, children);
}

const SVG = 'http://www.w3.org/2000/svg';
/** @param {string} tag @param {Record<string, unknown> | null} [attributes] @param {...any} children @returns {SVGElement} */
export function svg(tag, attributes, ...children) {
  return build(document.createElementNS(SVG, tag), attributes, children);
}

/** @template {Element} E @param {E} element @param {Record<string, unknown> | null | undefined} attributes @param {any[]} children @returns {E} */
function build(element, attributes, children) {
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    else if (name === 'text') element.textContent = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
  return element;
}

let fieldCounter = 0;

/**
 * A labelled input with a hint and an error slot that aria-describedby points to.
 * @param {{ name: string, label: string, type?: string, value?: string, hint?: string, autocomplete?: string, required?: boolean, options?: [string, string][] }} spec
 */
export function field(spec) {
  fieldCounter += 1;
  const id = `f-${spec.name}-${fieldCounter}`;
  const hintId = spec.hint ? `${id}-hint` : null;
  const control = spec.options
    ? h(
        'select',
        { id, name: spec.name },
        ...spec.options.map(([value, text]) => h('option', { value, selected: value === spec.value }, text)),
      )
    : h('input', {
        id,
        name: spec.name,
        type: spec.type ?? 'text',
        value: spec.value ?? '',
        autocomplete: spec.autocomplete ?? 'off',
        required: spec.required,
        spellcheck: spec.type === 'password' || spec.type === 'email' ? 'false' : undefined,
      });
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h(
    'div',
    { class: 'field', 'data-field': spec.name },
    h('label', { for: id }, spec.label),
    control,
    spec.hint ? h('p', { class: 'hint', id: hintId }, spec.hint) : null,
    h('p', { class: 'field-error', id: `${id}-error`, hidden: true }),
  );
}

/** A group of checkboxes under one legend (roles), with its own error slot. @param {string} name @param {string} legend @param {[string, string][]} choices @param {string[]} checked */
export function checkboxes(name, legend, choices, checked) {
  fieldCounter += 1;
  const id = `g-${name}-${fieldCounter}`;
  return h(
    'fieldset',
    { class: 'field checkboxes', 'data-field': name, id },
    h('legend', null, legend),
    ...choices.map(([value, text]) =>
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name, value, checked: checked.includes(value) }), ` ${text}`),
    ),
    h('p', { class: 'field-error', id: `${id}-error`, hidden: true }),
  );
}

/** The general error area of a form or page: role=alert, so it is announced when it fills. */
export function alertArea() {
  return h('div', { class: 'alert', role: 'alert', hidden: true });
}

/** @param {HTMLElement} form @param {HTMLElement} alert */
export function clearErrors(form, alert) {
  for (const slot of form.querySelectorAll('.field-error')) {
    slot.textContent = '';
    slot.setAttribute('hidden', '');
  }
  for (const control of form.querySelectorAll('[aria-invalid]')) {
    control.removeAttribute('aria-invalid');
    const described = (control.getAttribute('aria-describedby') ?? '').split(' ').filter((id) => id && !id.endsWith('-error'));
    if (described.length > 0) control.setAttribute('aria-describedby', described.join(' '));
    else control.removeAttribute('aria-describedby');
  }
  alert.textContent = '';
  alert.setAttribute('hidden', '');
}

/** Conflicts that name no field in `errors` but clearly belong to one. */
const FIELD_OF_CODE = { username_taken: 'username', email_taken: 'email' };

/**
 * Shows a failed request: each field error beside its field (linked with aria-describedby and
 * aria-invalid, the first one focused), everything else in the alert area.
 * @param {HTMLElement} form @param {HTMLElement} alert @param {unknown} error
 */
export function showErrors(form, alert, error) {
  clearErrors(form, alert);
  const problem = /** @type {any} */ (error)?.problem;
  if (!problem) {
    showAlert(alert, 'Something went wrong; try again.');
    throw error;
  }
  const fieldErrors = [...(problem.errors ?? [])];
  const codeField = FIELD_OF_CODE[/** @type {keyof typeof FIELD_OF_CODE} */ (problem.code)];
  if (codeField && fieldErrors.length === 0) fieldErrors.push({ field: codeField, message: problem.detail });
  const unplaced = [];
  /** @type {HTMLElement | null} */
  let first = null;
  for (const { field: name, message } of fieldErrors) {
    const wrapper = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    const slot = wrapper?.querySelector('.field-error');
    if (!wrapper || !slot) {
      unplaced.push(`${name} ${message}`);
      continue;
    }
    slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    slot.removeAttribute('hidden');
    const controls = wrapper.matches('fieldset') ? [wrapper] : [...wrapper.querySelectorAll('input, select, textarea')];
    for (const control of controls) {
      control.setAttribute('aria-invalid', 'true');
      const described = new Set((control.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean));
      described.add(slot.id);
      control.setAttribute('aria-describedby', [...described].join(' '));
    }
    first ??= /** @type {HTMLElement} */ (wrapper.querySelector('input, select, textarea'));
  }
  if (fieldErrors.length === 0 || unplaced.length > 0) {
    showAlert(alert, unplaced.length > 0 ? `${problem.detail} ${unplaced.join('; ')}` : problem.detail);
  } else {
    showAlert(alert, 'Please correct the marked fields.');
  }
  first?.focus();
}

/** @param {HTMLElement} alert @param {string} message */
export function showAlert(alert, message) {
  alert.textContent = message;
  alert.removeAttribute('hidden');
}

/** "3 Nov 2026, 14:05" in the browser's locale, or a dash. @param {string | null} iso */
export function formatTime(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** A heading that takes focus after navigation, so keyboard and screen-reader users land on it. @param {string} text */
export function pageHeading(text) {
  return h('h1', { tabindex: '-1', class: 'page-heading' }, text);
}

/**
 * A page that could not load: the API's explanation in an alert. A 401 shows nothing, because the
 * sign-in screen is already taking over; an error that is no API answer is a bug, so it is logged.
 * @param {unknown} error
 */
export function errorPanel(error) {
  const problem = /** @type {any} */ (error)?.problem;
  if (problem?.status === 401) return h('div');
  if (!problem) console.error(error);
  return h('div', { class: 'alert', role: 'alert' }, problem?.detail ?? 'Something went wrong; reload the page and try again.');
}
