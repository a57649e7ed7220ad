// Room tags through the SDK: setRoomTag / getRoomTags / deleteRoomTag, and the m.tag room
// account data reaching alice's Room through the sliding sync account_data extension.
//
// config: {roomId}
export async function run(ctx) {
    const { config } = ctx;
    const alice = await ctx.login("alice");
    await ctx.startSliding(alice, {
        lists: { all: { ranges: [[0, 9]], timeline_limit: 1, required_state: [] } },
    });
    const roomId = config.roomId;
    await ctx.waitFor("the room in alice's client", () => alice.getRoom(roomId));

    await alice.setRoomTag(roomId, "m.favourite", { order: 0.25 });
    await alice.setRoomTag(roomId, "u.work", {});
    const afterSet = await alice.getRoomTags(roomId);
    const synced = await ctx.waitFor("both tags synced to the Room", () => {
        const tags = alice.getRoom(roomId)?.tags ?? {};
        return "m.favourite" in tags && "u.work" in tags ? structuredClone(tags) : null;
    });

    await alice.deleteRoomTag(roomId, "u.work");
    const afterDelete = await alice.getRoomTags(roomId);
    const syncedAfterDelete = await ctx.waitFor("u.work gone from the Room", () => {
        const tags = alice.getRoom(roomId)?.tags ?? {};
        return "u.work" in tags ? null : structuredClone(tags);
    });
    return { afterSet, synced, afterDelete, syncedAfterDelete };
}
