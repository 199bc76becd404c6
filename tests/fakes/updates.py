"""Raw Bot API update payloads, as Telegram would send them, for both test transports."""

from __future__ import annotations

import time

CHANNEL = {"id": -1001234567890, "type": "channel", "title": "Crypto Gems", "username": "cryptogems"}
PRIVATE_CHANNEL = {"id": -1009876543210, "type": "channel", "title": "Hidden <b>Alpha</b>"}
GROUP = {"id": -1005555555555, "type": "supergroup", "title": "Traders chat"}
MODERATOR = {"id": 111, "is_bot": False, "first_name": "Mia", "last_name": "Mod"}
STRANGER = {"id": 666, "is_bot": False, "first_name": "Eve"}


def channel_post(message_id: int, text: str | None, chat: dict = CHANNEL, *, edited: bool = False, **extra) -> dict:
    message = {"message_id": message_id, "date": int(time.time()), "chat": chat, "sender_chat": chat} | extra
    if text is not None:
        message["text"] = text
    if edited:
        message["edit_date"] = int(time.time())
    return {"edited_channel_post" if edited else "channel_post": message}


def group_message(
    message_id: int, text: str | None, chat: dict = GROUP, user: dict = STRANGER, *, edited: bool = False, **extra
) -> dict:
    message = {"message_id": message_id, "date": int(time.time()), "chat": chat, "from": user} | extra
    if text is not None:
        message["text"] = text
    if edited:
        message["edit_date"] = int(time.time())
    return {"edited_message" if edited else "message": message}


def private_message(message_id: int, text: str, user: dict = MODERATOR, **extra) -> dict:
    chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    message = {"message_id": message_id, "date": int(time.time()), "chat": chat, "from": user, "text": text} | extra
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"message": message}


def command(text: str, chat: dict, user: dict = MODERATOR, message_id: int = 1, **extra) -> dict:
    message = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat,
        "from": user,
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
    } | extra
    return {"message": message}


def callback(data: str, user: dict, message: dict, query_id: str = "q1") -> dict:
    return {"callback_query": {"id": query_id, "from": user, "chat_instance": "ci", "data": data, "message": message}}


def my_chat_member(chat: dict, old: str, new: str, by: dict = MODERATOR) -> dict:
    bot = {"id": 999000, "is_bot": True, "first_name": "Compliance", "username": "compliance_test_bot"}

    def member(status):
        m = {"user": bot, "status": status}
        if status == "administrator":
            m |= {
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": False,
                "can_restrict_members": False,
                "can_promote_members": False,
                "can_change_info": False,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
            }
        if status == "kicked":
            m["until_date"] = 0
        return m

    return {
        "my_chat_member": {
            "chat": chat,
            "from": by,
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
    }
