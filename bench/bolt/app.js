// Bolt for JavaScript answering `/cusp reflect …` the way a minimal Bolt app would:
// the baseline issue 12 compares cusp with, run by bench/run.sh --bolt on 127.0.0.1.
//
// HTTP receiver (Bolt's default), signature verified by Bolt (timestamps within 5
// minutes), the command acknowledged with an ephemeral answer of the same shape and
// about the same size as cusp's (a header and three sections, ~700 bytes). It stores
// nothing and calls no Slack API, so nothing leaves the machine.
//
// Environment: SLACK_SIGNING_SECRET (required), PORT (default 3000), BOLT_LOG_LEVEL
// (default warn).
'use strict';

const { App, LogLevel } = require('@slack/bolt');

const signingSecret = process.env.SLACK_SIGNING_SECRET;
if (!signingSecret) {
  console.error('SLACK_SIGNING_SECRET is required');
  process.exit(2);
}
const port = Number(process.env.PORT || 3000);

const app = new App({
  signingSecret,
  // Single-workspace shape. With the bot's ids given and token verification off, Bolt
  // never calls auth.test (without the ids it would, on the first request); the handler
  // only acks, so the token is never sent.
  token: 'xoxb-bench-unused',
  botId: 'B0BENCH',
  botUserId: 'U0BENCHBOT',
  tokenVerificationEnabled: false,
  // Should Bolt call the Web API after all, the call stays on loopback (and fails).
  clientOptions: { slackApiUrl: 'http://127.0.0.1:9/api/' },
  // Slack sends slash commands to the Request URL the app configures; cusp's is this.
  endpoints: '/slack/commands',
  logLevel: LogLevel[(process.env.BOLT_LOG_LEVEL || 'warn').toUpperCase()] || LogLevel.WARN,
});

// Escapes what Slack's mrkdwn treats as markup, as cusp does for user text.
const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

app.command('/cusp', async ({ command, ack }) => {
  const text = command.text.replace(/^reflect\s+/, '');
  const account = (text.match(/\b[A-Z][a-zA-Z]+\b/) || ['your customer'])[0];
  const first = `Whose date is quarter end: what's happening at ${escape(account)} that makes it matter to them?`;
  await ack({
    response_type: 'ephemeral',
    text: `cusp reflection: ${first}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: 'Your reflection', emoji: true } },
      {
        type: 'section',
        text: { type: 'mrkdwn', text: '*Themes:* none of the CUSP themes showed up in this one.' },
      },
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*Questions to consider:*\n1. ${first}\n2. Who will actually use this every day, and have we heard from them directly?`,
        },
      },
      {
        type: 'section',
        text: { type: 'mrkdwn', text: `_neutral · customer-centric share 50% · account: ${escape(account)}_` },
      },
    ],
  });
});

(async () => {
  // Loopback only: the bench never listens beyond this machine.
  await app.start({ port, host: '127.0.0.1' });
  // bench/run.sh waits for this line.
  console.log(`bolt listening on 127.0.0.1:${port}`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
