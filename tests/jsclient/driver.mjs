// Drives matrix-js-sdk against a homeserver for Kairan's tests.
//
//   node driver.mjs SCENARIO < config.json
//
// config.json: {"baseUrl": "...", "users": {"alice": {"user": "@alice:hs", "password": "..."}},
// ...whatever the scenario reads}.  The scenario is scenarios/SCENARIO.mjs, a module exporting
// `async function run(ctx)` whose return value (JSON) is the result.  The last line of stdout is
// `KAIRAN-RESULT {"ok": true, "result": ...}` or `KAIRAN-RESULT {"ok": false, "error": "..."}`;
// the SDK's own logging goes to stderr.  A new scenario is a new file in scenarios/.
import { readFileSync } from "node:fs";

import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import {
    SlidingSync,
    SlidingSyncEvent,
    SlidingSyncState,
} from "matrix-js-sdk/lib/sliding-sync.js";

const RESULT = "KAIRAN-RESULT ";

// The SDK logs through loglevel to the console: keep stdout for the result alone.
for (const method of ["log", "info", "debug", "trace", "warn"]) {
    console[method] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}
logger.setLevel?.(process.env.KAIRAN_JS_LOG_LEVEL ?? "warn");

function finish(payload, code) {
    process.stdout.write(RESULT + JSON.stringify(payload) + "\n", () => process.exit(code));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** What every scenario gets: the SDK, its config, logged-in clients and waiting helpers. */
function context(config) {
    const started = [];
    const ctx = {
        sdk,
        config,
        SlidingSync,
        SlidingSyncEvent,
        SlidingSyncState,
        log: (...args) => process.stderr.write(`[driver] ${args.map(String).join(" ")}\n`),

        /** A MatrixClient logged in with the password of config.users[role]. */
        async login(role) {
            const who = config.users?.[role];
            if (!who) throw new Error(`config.users has no ${role}`);
            const anonymous = sdk.createClient({ baseUrl: config.baseUrl });
            const answer = await anonymous.loginRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: who.user },
                password: who.password,
                initial_device_display_name: `js-sdk ${role}`,
            });
            return sdk.createClient({
                baseUrl: config.baseUrl,
                userId: answer.user_id,
                accessToken: answer.access_token,
                deviceId: answer.device_id,
            });
        },

        /**
         * Start `client` on Simplified Sliding Sync as Element Web does: a SlidingSync with the
         * given lists (a Map or an object) and default room subscription, handed to startClient.
         * `seen` gathers the raw answers: how many completed, list counts, errors, room IDs.
         */
        async startSliding(client, { lists, subscription, timeoutMs = 10000 }) {
            const listMap = lists instanceof Map ? lists : new Map(Object.entries(lists));
            const ss = new SlidingSync(
                config.baseUrl, listMap, subscription ?? { timeline_limit: 1 }, client, timeoutMs,
            );
            const seen = { responses: 0, errors: [], counts: {}, rooms: new Set() };
            ss.on(SlidingSyncEvent.Lifecycle, (state, resp, err) => {
                if (err) {
                    seen.errors.push(`${err.httpStatus ?? ""} ${err.data?.errcode ?? err.message}`);
                } else if (state === SlidingSyncState.Complete && resp) {
                    seen.responses += 1;
                    for (const [key, list] of Object.entries(resp.lists ?? {})) {
                        seen.counts[key] = list.count;
                    }
                }
            });
            ss.on(SlidingSyncEvent.RoomData, (roomId) => seen.rooms.add(roomId));
            await client.startClient({ slidingSync: ss });
            started.push(client);
            return { ss, seen };
        },

        /** Poll `check` (sync or async) until it returns something truthy; that value. */
        async waitFor(what, check, timeoutMs = 30000) {
            const deadline = Date.now() + timeoutMs;
            let last;
            while (Date.now() < deadline) {
                last = await check();
                if (last) return last;
                await sleep(50);
            }
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        },

        stopAll() {
            for (const client of started) client.stopClient();
        },
    };
    return ctx;
}

const name = process.argv[2] ?? "";
if (!/^[a-z0-9-]+$/.test(name)) {
    finish({ ok: false, error: `bad scenario name ${JSON.stringify(name)}` }, 2);
} else {
    let ctx;
    try {
        const config = JSON.parse(readFileSync(0, "utf8"));
        ctx = context(config);
        const scenario = await import(`./scenarios/${name}.mjs`);
        const result = await scenario.run(ctx);
        ctx.stopAll();
        finish({ ok: true, result }, 0);
    } catch (err) {
        ctx?.stopAll();
        const detail = err?.data?.errcode ? ` (${err.httpStatus} ${err.data.errcode})` : "";
        finish({ ok: false, error: `${err?.stack ?? err}${detail}` }, 1);
    }
}
