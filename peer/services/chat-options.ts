/** What other peers may make this peer store through its chat. */
export interface ChatOptions {
    /**
     * Unread messages one sender may have stored here (default 1,000); more are refused with QuotaExceeded until
     * this peer's app marks some read (`chat.markRead`) or clears the history.
     */
    unreadPerSender: number;
    /** Bytes (UTF-8 text) of those unread messages (default 4 MiB). */
    unreadBytesPerSender: number;
    /** Groups one owner may add this peer to (default 100); a group has at most 1,000 members. */
    groupsPerOwner: number;
}

export const defaultChatOptions: ChatOptions = { unreadPerSender: 1000, unreadBytesPerSender: 4 * 1024 * 1024, groupsPerOwner: 100 };
