"""Multi-turn memory: the earlier turns of each A2A context, so a follow-up message sees them.

A2A groups the tasks of one conversation by `contextId`; each message starts a new task in that
context. The model is stateless, so the agent sends the earlier turns along with each new
message. The store is per agent process and bounded (least recently used contexts are
forgotten first, and only the last turns of a context are kept) so that a long-running agent
does not grow without limit; a restarted agent starts with no memory, like its task store.
A context is the caller's own (keyed by owner and contextId, the owner as the task store
resolves it), so a caller naming another caller's contextId starts an empty conversation and
never sees the other's turns.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class ConversationStore:
    def __init__(self, max_contexts: int = 1000, max_turns: int = 20):
        self.max_contexts = max_contexts
        self.max_turns = max_turns
        self._turns: OrderedDict[tuple[str, str], list[tuple[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def history(self, owner: str, context_id: str) -> list[dict[str, str]]:
        """Chat messages of the owner's context's earlier turns, oldest first."""
        key = (owner, context_id)
        with self._lock:
            turns = self._turns.get(key)
            if turns is None:
                return []
            self._turns.move_to_end(key)
            messages = []
            for user, assistant in turns:
                messages.append({"role": "user", "content": user})
                messages.append({"role": "assistant", "content": assistant})
            return messages

    def record(self, owner: str, context_id: str, user: str, assistant: str) -> None:
        key = (owner, context_id)
        with self._lock:
            turns = self._turns.setdefault(key, [])
            turns.append((user, assistant))
            del turns[: -self.max_turns]
            self._turns.move_to_end(key)
            while len(self._turns) > self.max_contexts:
                self._turns.popitem(last=False)

    def __len__(self) -> int:
        return len(self._turns)
