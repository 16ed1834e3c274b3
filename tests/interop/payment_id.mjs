// The payment-identifier extension both ways against the official @x402/extensions package:
// judges the declarations, echoes and ids given in $PAYID_INPUT with the package's own
// validators and extractors, and prints its own declarations, generated ids and echoes. Prints
// one JSON line.
import {
  declarePaymentIdentifierExtension,
  isPaymentIdentifierExtension,
  validatePaymentIdentifier,
  isPaymentIdentifierRequired,
  extractAndValidatePaymentIdentifier,
  validatePaymentIdentifierRequirement,
  appendPaymentIdentifierToExtensions,
  generatePaymentId,
  isValidPaymentId,
} from "@x402/extensions/payment-identifier";

const input = JSON.parse(process.env.PAYID_INPUT);
const declarations = input.declarations.map((d) => ({
  shape: isPaymentIdentifierExtension(d),
  valid: validatePaymentIdentifier(d).valid,
  required: isPaymentIdentifierRequired(d),
}));
const payloads = input.payloads.map((p) => {
  const { id, validation } = extractAndValidatePaymentIdentifier(p);
  return { id, valid: validation.valid, meetsRequired: validatePaymentIdentifierRequirement(p, true).valid };
});
const ids = input.ids.map((id) => isValidPaymentId(id));
const generated = [generatePaymentId(), generatePaymentId(), generatePaymentId("")];
// Their client's echo of our declaration.
const echoed = input.declarations
  .filter((d) => isPaymentIdentifierExtension(d))
  .map((d) => appendPaymentIdentifierToExtensions({ "payment-identifier": structuredClone(d) }));
const theirs = {
  optional: declarePaymentIdentifierExtension(),
  required: declarePaymentIdentifierExtension(true),
};
console.log(JSON.stringify({ declarations, payloads, ids, generated, echoed, theirs }));
