// Receive hookrelay webhooks and verify their signatures with Node's own `crypto`.
//
//   WEBHOOK_SECRET=whsec_... PORT=3000 node verify.mjs
//
// Answers 204 to a valid delivery, 400 to anything else. No dependencies.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const TOLERANCE_SECONDS = 5 * 60;

const secret = process.env.WEBHOOK_SECRET ?? "";
if (!secret.startsWith("whsec_")) {
  console.error("set WEBHOOK_SECRET to the webhook's signing secret (whsec_...)");
  process.exit(2);
}
// The HMAC key is the base64-decoded part after `whsec_`.
const key = Buffer.from(secret.slice("whsec_".length), "base64");

/** Throws unless `rawBody` carries a valid, fresh hookrelay signature. */
function verify(headers, rawBody) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) throw new Error("missing webhook-* headers");

  // Refuse old (replayed) and future timestamps.
  const seconds = Number(timestamp);
  if (!/^\d+$/.test(timestamp)) throw new Error("bad webhook-timestamp");
  if (Math.abs(Date.now() / 1000 - seconds) > TOLERANCE_SECONDS) {
    throw new Error("timestamp outside the tolerance");
  }

  // Sign "<id>.<timestamp>.<raw body>" and compare, in constant time, with every
  // `v1,<base64>` entry: during a secret rotation there are two.
  const expected = createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(rawBody)
    .digest();
  for (const entry of signatures.split(" ")) {
    const [version, signature] = entry.split(",", 2);
    if (version !== "v1" || !signature) continue;
    const given = Buffer.from(signature, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) return;
  }
  throw new Error("no matching signature");
}

// Deliveries are at least once: remember the ids already handled (use your database).
const seen = new Set();

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const rawBody = Buffer.concat(chunks); // verify the raw bytes, before JSON.parse
    try {
      verify(req.headers, rawBody);
    } catch (err) {
      console.log(`rejected: ${err.message}`);
      res.writeHead(400).end();
      return;
    }
    const id = req.headers["webhook-id"];
    if (seen.has(id)) {
      console.log(`duplicate ${id}`);
      res.writeHead(204).end();
      return;
    }
    seen.add(id);
    const event = JSON.parse(rawBody.toString("utf8"));
    console.log(`verified ${id} ${event.type}`);
    res.writeHead(204).end(); // answer fast; do slow work after
  });
});

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`listening on ${server.address().port}`);
});
