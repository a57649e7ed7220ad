// What Element does every day, through the SDK's own calls: threads and relations (a thread,
// a reaction, an edit), the thread list, a message search in Japanese, and a room upgrade.
//
// config: {} (alice makes her own room)
export async function run(ctx) {
    const { sdk } = ctx;
    const alice = await ctx.login("alice");
    // What startClient does first: ask the server (/versions) which thread APIs it has; a
    // server claiming v1.4 gets the stable /threads, anything less the unstable MSC3856 path.
    const support = await alice.doesServerSupportThread();
    sdk.Thread.setServerSideSupport(support.threads);
    sdk.Thread.setServerSideListSupport(support.list);
    sdk.Thread.setServerSideFwdPaginationSupport(support.fwdPagination);
    const { room_id: roomId } = await alice.createRoom({ name: "防災連絡", room_version: "11" });
    const send = async (content) => (await alice.sendEvent(roomId, "m.room.message", content)).event_id;
    const text = (body) => ({ msgtype: "m.text", body });

    const root = await send(text("地域防災計画の見直しについて"));
    const reply1 = await send({
        ...text("第3章を読みました"),
        "m.relates_to": { rel_type: "m.thread", event_id: root, is_falling_back: true,
                          "m.in_reply_to": { event_id: root } },
    });
    const reply2 = await send({
        ...text("避難所の一覧も更新が必要です"),
        "m.relates_to": { rel_type: "m.thread", event_id: root, is_falling_back: true,
                          "m.in_reply_to": { event_id: reply1 } },
    });
    await alice.sendEvent(roomId, "m.reaction", {
        "m.relates_to": { rel_type: "m.annotation", event_id: root, key: "👍" },
    });
    const typo = await send(text("会議は明日の10時です"));
    const edit = await send({
        ...text("* 会議は明日の11時です"),
        "m.new_content": text("会議は明日の11時です"),
        "m.relates_to": { rel_type: "m.replace", event_id: typo },
    });

    const thread = await alice.fetchRelations(roomId, root, "m.thread", null);
    const reactions = await alice.fetchRelations(roomId, root, "m.annotation", "m.reaction");
    const threads = await alice.createThreadListMessagesRequest(
        roomId, null, 10, sdk.Direction.Backward, sdk.ThreadFilterType.All,
    );
    const edited = await alice.fetchRoomEvent(roomId, typo);

    const found = await alice.searchRoomEvents({ term: "防災", filter: { rooms: [roomId] } });
    const notFound = await alice.searchRoomEvents({ term: "予算", filter: { rooms: [roomId] } });

    const { replacement_room: newRoom } = await alice.upgradeRoom(roomId, "12");
    const tombstone = await alice.getStateEvent(roomId, "m.room.tombstone", "");
    const create = await alice.getStateEvent(newRoom, "m.room.create", "");
    const newName = await alice.getStateEvent(newRoom, "m.room.name", "");

    return {
        support,
        ids: { root, reply1, reply2, typo, edit },
        thread: thread.chunk.map((e) => e.event_id),
        reactions: reactions.chunk.map((e) => e.content["m.relates_to"].key),
        threads: threads.chunk.map((e) => ({
            id: e.event_id,
            count: e.unsigned?.["m.relations"]?.["m.thread"]?.count,
            latest: e.unsigned?.["m.relations"]?.["m.thread"]?.latest_event?.event_id,
        })),
        edit: edited.unsigned?.["m.relations"]?.["m.replace"]?.event_id ?? null,
        search: {
            count: found.count,
            hits: found.results.map((r) => {
                const event = r.context.getEvent();
                return [event.getType(), event.getContent().body ?? event.getContent().name];
            }),
            highlights: found.highlights,
            none: notFound.results.length,
        },
        upgrade: { newRoom, tombstone, predecessor: create.predecessor, newName: newName.name },
    };
}
