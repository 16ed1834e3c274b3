// The bazaar (discovery) extension both ways against the official @x402/extensions package:
// validates the declarations given in $BAZAAR_INPUT with the package's own validators, runs its
// route-template rule and its facilitator-side extraction, and prints its own declarations for
// the same configurations as ours. Prints one JSON line.
import {
  declareDiscoveryExtension,
  bazaarResourceServerExtension,
  validateDiscoveryExtension,
  validateDiscoveryExtensionSpec,
  isValidRouteTemplate,
  extractDiscoveryInfo,
} from "@x402/extensions/bazaar";

const input = JSON.parse(process.env.BAZAAR_INPUT);
const judge = (d) => {
  const spec = validateDiscoveryExtensionSpec(d);
  const schema = validateDiscoveryExtension(d);
  const template = d.routeTemplate === undefined ? true : isValidRouteTemplate(d.routeTemplate);
  return { valid: spec.valid && schema.valid && template, errors: [...(spec.errors ?? []), ...(schema.errors ?? [])] };
};
const ours = input.declarations.map(judge);
const templates = input.templates.map((t) => isValidRouteTemplate(t));
const extracted = input.payloads.map(({ payload, requirements }) => {
  const info = extractDiscoveryInfo(payload, requirements);
  return info === null ? null : { resourceUrl: info.resourceUrl, method: info.method ?? null, routeTemplate: info.routeTemplate ?? null };
});
const context = { method: "GET", adapter: { getPath: () => "/users/42" }, routePattern: "/users/:id" };
const bare = declareDiscoveryExtension({}).bazaar;
const theirs = {
  query: declareDiscoveryExtension({
    method: "GET",
    input: { city: "Paris" },
    inputSchema: { properties: { city: { type: "string" } }, required: ["city"] },
    output: { example: { temperature: 21 }, schema: { properties: { temperature: { type: "number" } } } },
  }).bazaar,
  body: declareDiscoveryExtension({
    method: "POST",
    bodyType: "json",
    input: { prompt: "hi" },
    inputSchema: { properties: { prompt: { type: "string" } } },
  }).bazaar,
  mcp: declareDiscoveryExtension({
    toolName: "search",
    description: "Search",
    transport: "sse",
    inputSchema: { type: "object", properties: { q: { type: "string" } } },
    example: { q: "x" },
  }).bazaar,
  bare,
  enriched: bazaarResourceServerExtension.enrichDeclaration(bare, context),
};
console.log(JSON.stringify({ ours, templates, extracted, theirs }));
