// Form fields from a script's parameter schema: JSON Schema ({"type": "object", "properties": {...}}) or the
// flat {name: {type, default, minimum, maximum, choices}} shape; and the parameters a filled form names.

/** The properties of either schema shape, as [name, spec] pairs. */
export function schemaProperties(schema) {
  if (!schema || typeof schema !== "object") return [];
  if (schema.type === "object" || schema.properties) return Object.entries(schema.properties || {});
  return Object.entries(schema).filter(([, spec]) => spec && typeof spec === "object");
}

function choicesOf(spec) {
  return spec.enum || spec.choices || null;
}

function kindOf(spec) {
  const type = Array.isArray(spec.type) ? spec.type.find((t) => t !== "null") : spec.type;
  return type || (typeof spec.default === "number" ? "number" : "string");
}

/** One labelled input per parameter, its default filled in and its bounds enforced by the browser. */
export function parameterFields(schema) {
  return schemaProperties(schema).map(([name, spec]) => {
    const label = document.createElement("label");
    label.className = "field";
    const caption = document.createElement("span");
    caption.textContent = name;
    label.title = spec.description || "";
    let input;
    const choices = choicesOf(spec);
    const kind = kindOf(spec);
    if (choices) {
      input = document.createElement("select");
      for (const choice of choices) {
        const option = document.createElement("option");
        option.value = option.textContent = String(choice);
        input.append(option);
      }
      if (spec.default !== undefined) input.value = String(spec.default);
    } else if (kind === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
      input.checked = Boolean(spec.default);
    } else {
      input = document.createElement("input");
      if (kind === "number" || kind === "integer") {
        input.type = "number";
        input.step = kind === "integer" ? "1" : "any";
        if (spec.minimum !== undefined) input.min = String(spec.minimum);
        if (spec.maximum !== undefined) input.max = String(spec.maximum);
      } else {
        input.type = "text";
      }
      if (spec.default !== undefined && spec.default !== null) input.value = String(spec.default);
    }
    input.name = name;
    input.dataset.kind = kind;
    label.append(caption, input);
    return label;
  });
}

/** The parameters a form holds, typed as its schema says; throws naming a field the browser would reject. */
export function readForm(form) {
  const parameters = {};
  for (const input of form.querySelectorAll("[name]")) {
    if (!input.checkValidity()) throw new Error(`${input.name}: ${input.validationMessage}`);
    const kind = input.dataset.kind;
    if (input.type === "checkbox") parameters[input.name] = input.checked;
    else if (input.value === "") continue; // the script's default applies
    else if (kind === "number" || kind === "integer") parameters[input.name] = Number(input.value);
    else parameters[input.name] = input.value;
  }
  return parameters;
}
