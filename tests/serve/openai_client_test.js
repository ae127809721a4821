// Drives `hsa serve` with the official openai client: models, completions, chat, streaming, errors.
const assert = require("assert");
const OpenAI = require("openai");

async function main() {
  const client = new OpenAI({ baseURL: process.env.HSA_URL, apiKey: "sk-test", maxRetries: 0 });
  const models = await client.models.list();
  assert.strictEqual(models.data[0].id, "passkey-tiny");

  const prompt = "The pass key is 12345. Remember it. 12345 is the pass key. What is the pass key? The pass key is";
  const c = await client.completions.create({ model: "passkey-tiny", prompt, max_tokens: 5, temperature: 0 });
  assert.ok(c.choices[0].text.startsWith("12345"), c.choices[0].text);
  assert.strictEqual(c.usage.completion_tokens, 5);
  console.log("completion:", JSON.stringify(c.choices[0].text), "usage:", JSON.stringify(c.usage));

  const again = await client.completions.create({ model: "passkey-tiny", prompt, max_tokens: 5 });
  assert.strictEqual(again.choices[0].text, c.choices[0].text);
  assert.ok(again.usage.prompt_tokens_details.cached_tokens > 0);

  const chat = await client.chat.completions.create({
    model: "passkey-tiny",
    messages: [{ role: "user", content: "The pass key is 777. What is the pass key?" }],
    max_tokens: 6,
  });
  assert.strictEqual(chat.choices[0].message.role, "assistant");
  console.log("chat:", JSON.stringify(chat.choices[0].message));

  let streamed = "";
  const stream = await client.completions.create({ model: "passkey-tiny", prompt, max_tokens: 5, stream: true });
  for await (const chunk of stream) if (chunk.choices.length) streamed += chunk.choices[0].text;
  assert.strictEqual(streamed, c.choices[0].text);

  let chatStreamed = "";
  const chatStream = await client.chat.completions.create({
    model: "passkey-tiny", messages: [{ role: "user", content: "hello" }], max_tokens: 4, stream: true,
  });
  for await (const chunk of chatStream) if (chunk.choices.length) chatStreamed += chunk.choices[0].delta.content || "";
  console.log("chat stream:", JSON.stringify(chatStreamed));

  await assert.rejects(
    client.completions.create({ model: "passkey-tiny", prompt: "hi", max_tokens: 0 }),
    (e) => e instanceof OpenAI.BadRequestError && e.error && e.error.param === "max_tokens");
  await assert.rejects(client.completions.create({ model: "other", prompt: "hi" }), (e) => e.status === 404);
  const unauthorised = new OpenAI({ baseURL: process.env.HSA_URL, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(unauthorised.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  console.log("openai client: all checks passed");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
