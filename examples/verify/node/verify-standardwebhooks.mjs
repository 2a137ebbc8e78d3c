// Receive hookrelay webhooks and verify them with the official `standardwebhooks` package.
//
//   npm ci
//   WEBHOOK_SECRET=whsec_... PORT=3000 node verify-standardwebhooks.mjs
//
// Answers 204 to a valid delivery, 400 to anything else.
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const secret = process.env.WEBHOOK_SECRET ?? "";
if (!secret.startsWith("whsec_")) {
  console.error("set WEBHOOK_SECRET to the webhook's signing secret (whsec_...)");
  process.exit(2);
}
// The library takes the secret as hookrelay shows it, `whsec_` prefix included.
const webhook = new Webhook(secret);

// Deliveries are at least once: remember the ids already handled (use your database).
const seen = new Set();

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    // Verify the raw body, exactly as received. `verify` checks the timestamp (5 minutes),
    // compares in constant time, accepts either signature during a rotation, and returns
    // the parsed JSON.
    const rawBody = Buffer.concat(chunks).toString("utf8");
    let event;
    try {
      event = webhook.verify(rawBody, req.headers);
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
    console.log(`verified ${id} ${event.type}`);
    res.writeHead(204).end();
  });
});

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`listening on ${server.address().port}`);
});
