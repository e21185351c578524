// Streams one chat completion with the official OpenAI Node client, as a
// user's program would: base URL, key and model from the arguments.
// Prints one JSON line: the chunks' count, the text, the finish reason and
// the usage.
//
//   node chat.mjs BASE_URL API_KEY MODEL PROMPT
import OpenAI from "openai";

const [baseURL, apiKey, model, prompt] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: apiKey || "none", maxRetries: 0 });
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: prompt }],
  max_tokens: 24,
  temperature: 0,
  seed: 1,
  stream: true,
  stream_options: { include_usage: true },
});
let chunks = 0, text = "", finish = null, usage = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta?.content) { chunks++; text += c.delta.content; }
    if (c.finish_reason) finish = c.finish_reason;
  }
}
const models = await client.models.list();
console.log(JSON.stringify({ chunks, text, finish, usage, models: models.data.map((m) => m.id) }));
