// alice's Element-Web-like client on Simplified Sliding Sync: the room list, names, timelines,
// an invite, then a message bob sends while alice's long-poll waits.
//
// config: {rooms: [{roomId, lastBody}], inviteRoomId, live: {roomId}}
const LIST = {
    ranges: [[0, 19]],
    timeline_limit: 5,
    required_state: [
        ["m.room.name", ""],
        ["m.room.create", ""],
        ["m.room.member", "$ME"],
        ["m.room.member", "$LAZY"],
    ],
};

function bodies(room) {
    if (!room) return [];
    return room
        .getLiveTimeline()
        .getEvents()
        .filter((e) => e.getType() === "m.room.message")
        .map((e) => e.getContent().body);
}

function summary(client) {
    const rooms = {};
    for (const room of client.getRooms()) {
        rooms[room.roomId] = {
            name: room.name,
            membership: room.getMyMembership(),
            joined: room.getJoinedMemberCount(),
            bodies: bodies(room),
        };
    }
    return rooms;
}

export async function run(ctx) {
    const { config } = ctx;
    const alice = await ctx.login("alice");
    const bob = await ctx.login("bob");
    const { seen } = await ctx.startSliding(alice, {
        lists: { all: LIST },
        subscription: { timeline_limit: 5, required_state: [["*", "*"]] },
    });

    await ctx.waitFor("every room with its last message, and the invite", () =>
        config.rooms.every((r) => bodies(alice.getRoom(r.roomId)).at(-1) === r.lastBody) &&
        alice.getRoom(config.inviteRoomId)?.getMyMembership() === "invite",
    );
    const initial = summary(alice);
    const responsesBefore = seen.responses;

    // alice's client is now long-polling with its pos; bob's message must reach it.
    const live = `live from bob ${Date.now()}`;
    await bob.sendMessage(config.live.roomId, { msgtype: "m.text", body: live });
    await ctx.waitFor("bob's live message in alice's timeline", () =>
        bodies(alice.getRoom(config.live.roomId)).includes(live),
    );
    return {
        initial,
        live: { body: live, bodies: bodies(alice.getRoom(config.live.roomId)) },
        responses: { beforeLive: responsesBefore, total: seen.responses },
        counts: seen.counts,
        errors: seen.errors,
    };
}
