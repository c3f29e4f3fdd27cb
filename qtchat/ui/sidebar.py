"""The conversation sidebar: rooms and private conversations with unread counts and mention badges."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from qtchat.client import Conversation, ConversationList

from .bidi import isolate


def draw_item_base(delegate: QStyledItemDelegate, p: QPainter, option: QStyleOptionViewItem,
                   index: QModelIndex | QPersistentModelIndex) -> tuple[QStyleOptionViewItem, bool]:
    """Paint an item's background (selection, hover, focus) as the style does, without its text; the
    delegate paints the rest. Returns the item's style option and whether it is selected."""
    opt = QStyleOptionViewItem(option)
    delegate.initStyleOption(opt, index)
    opt.text = ""
    widget = opt.widget
    style = widget.style() if widget is not None else None
    if style is not None:
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, p, widget)
    return opt, bool(opt.state & QStyle.StateFlag.State_Selected)


PADLOCK = "\N{LOCK}"  # a private (invite-only) room


class ConversationDelegate(QStyledItemDelegate):
    """"# room" or "person", bold while unread, a count on the right (in the highlight colour for mentions), a
    padlock for a private room."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        fm = QFontMetrics(option.font)
        return QSize(120, fm.height() + 10)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        conv = index.data(ConversationList.ConversationRole)
        if not isinstance(conv, Conversation):
            return
        opt, selected = draw_item_base(self, p, option, index)
        rect: QRect = opt.rect
        palette: QPalette = opt.palette
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        font = QFont(opt.font)
        font.setBold(conv.unread > 0)
        fm = QFontMetrics(font)
        p.save()
        p.setFont(font)
        x, right = rect.left() + 8, rect.right() - 6
        if conv.unread:
            badge = str(conv.unread) if conv.unread < 1000 else "999+"
            bw = max(fm.height(), fm.horizontalAdvance(badge) + 10)
            box = QRect(right - bw, rect.top() + (rect.height() - fm.height()) // 2, bw, fm.height())
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(Qt.PenStyle.NoPen)
            if conv.mentions:
                p.setBrush(palette.color(QPalette.ColorRole.Highlight))
                badge_pen = palette.color(QPalette.ColorRole.HighlightedText)
            else:
                p.setBrush(palette.color(QPalette.ColorRole.Mid))
                badge_pen = palette.color(QPalette.ColorRole.Base)
            p.drawRoundedRect(box, box.height() / 2, box.height() / 2)
            p.setPen(badge_pen)
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, badge)
            right = box.left() - 6
        prefix = "#" if conv.is_room else "@"
        p.setPen(palette.color(QPalette.ColorRole.PlaceholderText if not selected else text_role))
        p.drawText(QRect(x, rect.top(), right - x, rect.height()), Qt.AlignmentFlag.AlignVCenter, prefix)
        if conv.invite_only:  # a padlock at the right: only those invited may join
            lock = PADLOCK
            lw = fm.horizontalAdvance(lock)
            p.drawText(QRect(right - lw, rect.top(), lw, rect.height()), Qt.AlignmentFlag.AlignVCenter, lock)
            right -= lw + 6
        x += fm.horizontalAdvance("# ")
        p.setPen(palette.color(text_role))
        name = isolate(fm.elidedText(conv.name, Qt.TextElideMode.ElideRight, max(0, right - x)))
        p.drawText(QRect(x, rect.top(), right - x, rect.height()), Qt.AlignmentFlag.AlignVCenter, name)
        p.restore()


class Sidebar(QListView):
    """The list of conversations; the current row is the active conversation."""

    def __init__(self, model: ConversationList, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setItemDelegate(ConversationDelegate(self))
        self.setUniformItemSizes(True)
        self.setAccessibleName("Conversations")
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setEditTriggers(QListView.EditTrigger.NoEditTriggers)

    def conversation_at(self, row: int) -> Conversation | None:
        conv = self.model().index(row, 0).data(ConversationList.ConversationRole)
        return conv if isinstance(conv, Conversation) else None

    def select(self, conv: Conversation) -> None:
        model = self.model()
        assert isinstance(model, ConversationList)
        if conv in model.items:
            self.setCurrentIndex(model.index(model.items.index(conv)))
