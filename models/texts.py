"""Text pools for the synthetic call generator, split train/dev/test by text.

Holds are built from the same openings as completed turns ("I'd like to" + pause + "change my
flight."), so the words before a pause, not the pause, tell a hold from an end of turn."""
from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

OPENINGS = [
    "I'd like to", "I want to", "I need to", "I was hoping to", "I'm calling to", "I'm trying to",
    "we'd like to", "I would really like to", "I just wanted to", "I'd love to", "my wife wants to",
    "I have to", "we need to", "I was going to", "I'm looking to", "my boss asked me to",
]
QUESTION_OPENINGS = ["can I", "could you help me", "is it possible to", "how do I", "can you",
                     "would you be able to", "why can't I", "when can I", "do I need to", "where do I"]
INTENTS = [
    "change my flight to {day}", "cancel my reservation", "check my account balance", "speak to a manager",
    "book a table for {num} people", "update my home address", "pay my phone bill", "reset my password",
    "track the package I ordered last week", "add a checked bag to my booking", "upgrade my seat",
    "get a refund for the tickets", "report a lost credit card", "schedule an appointment for {day}",
    "order a large pepperoni pizza", "move my appointment to {day} morning", "find out why my bill is so high",
    "change the delivery address", "confirm my hotel booking", "cancel my gym membership",
    "transfer some money to my savings account", "renew my prescription", "book a cleaning for {day}",
    "change the name on the ticket", "dispute a charge on my statement", "set up automatic payments",
    "extend my rental car until {day}", "ask about the return policy", "get a copy of my invoice",
    "check in for my flight", "reschedule the delivery to {day}", "activate my new card",
    "close my old account", "switch to a cheaper plan", "report a problem with my internet",
    "find a doctor near my office", "buy two tickets for the concert", "check the status of my claim",
    "add my son to the policy", "talk about my last payment", "book a room for {num} nights",
    "change my pin number", "get my car towed", "order more printer paper", "cancel the second order",
    "speak with someone in billing", "find out when the store opens", "change my email address",
    "request a callback for {day}", "get a quote for home insurance", "pick up my order at {num}",
]
ANSWERS = [
    "my name is {name}", "it's {digits}", "yes, that's right", "no, that's not correct",
    "the flight number is {code}", "it was on {day}", "yes please", "that's all, thank you",
    "my date of birth is {day} the {ordinal}", "the order number is {digits}", "I live in {city}",
    "it's for {num} people", "I paid with my visa card", "sometime on {day} afternoon",
    "the reference is {code}", "my zip code is {digits}", "no, I think that's everything",
    "yes, I already tried that", "I've been waiting for two weeks", "it should arrive at {city}",
    "the email is {name} at gmail dot com", "it's under my husband's name", "the last four are {digits}",
    "around {num} o'clock", "I'm not sure, maybe {day}", "just the one bag", "sure, go ahead",
]
# Short complete questions and requests (a whole turn in a few words; yes/no questions end on a rise
# that a model must not take for the continuation rise of a hold).
SHORT_QUESTIONS = [
    "is it open today?", "how much is it?", "what's the wait time?", "do you deliver?", "can you hear me?",
    "who am I speaking with?", "is that free?", "when do you open?", "where are you located?",
    "how long will it take?", "what's my balance?", "are you a real person?", "is it in stock?",
    "what do I owe?", "can I pay by card?", "does it come in blue?", "which one is cheaper?", "how far is it?",
    "what's the fee?", "will it be ready tomorrow?", "is there parking?", "has my order shipped?",
    "can I cancel?", "why was I charged twice?", "do I need an appointment?", "are you busy on {day}?",
    "is the pharmacy open?", "what's the address?", "can someone call me back?", "do you take cash?",
    "is the line still down?", "how do I log in?", "what happened to my refund?", "can I bring my dog?",
    "is breakfast included?", "where's my package?", "did you get my email?", "what's the total?",
    "how many are left?", "can I speak to Sarah?", "is it too late?", "do you have my number?",
    "any news on my claim?", "what are the fees?", "could you say that again?", "is it raining there?",
    "can I pick it up myself?", "how does that work?", "does that include tax?", "are you still there?",
    "I want a refund.", "it's broken.", "that works for me.", "sounds good.", "my card was declined.",
    "the app keeps crashing.", "I lost my keys.", "nothing has arrived.", "I'd rather not.", "not today.",
]
# Fragments that leave the clause open: the caller is going on.
FRAGMENTS = [
    "my account number is", "my name is", "the problem is that", "so basically", "and I also wanted to",
    "because", "but the thing is", "I think it was", "it's {digits_part}", "the flight was on",
    "I was wondering if", "what I really need is", "and then they told me", "so what happened was",
    "I called last week and", "the card ends in", "it's under the name", "if it's possible I'd like",
    "we were supposed to", "my daughter said that", "the address is", "and the reason I'm calling is",
]
FILLERS = ["um", "uh", "umm", "uhh", "hmm", "er", "well", "so", "you know", "let me think", "let me see", "like"]
BACKCHANNELS = ["mm hmm", "uh huh", "yeah", "right", "okay", "yes", "sure", "I see", "mhm", "yep", "alright",
                "got it", "mm", "oh okay", "yeah yeah", "uh huh yeah", "right right", "ok", "sure sure"]
INTERRUPTIONS = [
    "wait", "wait, stop", "no, stop", "hold on", "hold on a second", "sorry, that's not what I said",
    "no, that's wrong", "excuse me", "stop, I need to ask something", "no no, the other one",
    "actually, can I change that", "hang on", "sorry to interrupt", "one moment please", "no, I said {day}",
    "that's not right", "can you repeat that", "I didn't ask for that", "no wait", "sorry, what was that",
    "wait wait wait", "no, that's not my account", "stop please", "actually I need something else",
    "hold on, that's the wrong date", "excuse me, can I just", "no, cancel that", "sorry, I meant {day}",
    "just a second", "wait, how much", "no no no", "hang on, let me get a pen", "that's not what I asked",
    "I need to speak to a person", "operator", "agent please",
]
BOT_LINES = [
    "Sure, I can help you with that.", "Let me look up your reservation.", "Can I have your account number please?",
    "Thanks. I found your booking for next Tuesday.", "Your current balance is forty two dollars and ten cents.",
    "I have moved your appointment to Friday at ten in the morning.", "Is there anything else I can help you with?",
    "Thank you for calling. How can I help you today?", "I'm sorry to hear that. Let me check what happened.",
    "The package left our warehouse yesterday and should arrive on Monday.",
    "To confirm, you would like to cancel the order placed on the third of June.",
    "I can offer you a seat in row twelve, by the window.", "That will be an extra thirty dollars.",
    "Your refund will be processed within five to seven business days.", "Could you spell your last name for me?",
    "One moment while I pull up your details.", "I see two open orders on your account.",
    "The store opens at nine and closes at eight tonight.", "I've sent a confirmation to your email address.",
    "Your new card will arrive in three to five days.", "Would you like me to transfer you to billing?",
    "Please stay on the line while I connect you.", "I have updated your address in our system.",
    "The next available slot is on Wednesday at two thirty.", "Your claim is under review and should be decided soon.",
    "Great, that's all set.", "I can help with that, but first I need to verify your identity.",
    "Unfortunately, that flight is fully booked.",
    "We have a room available for three nights at ninety dollars a night.",
    "Let me read that back to you.", "Okay, I have changed the delivery date.", "Is this the best number to reach you?",
    "Our return policy allows returns within thirty days of purchase.", "Let me explain the charges on your bill.",
    "You are currently on the unlimited plan, which costs sixty dollars a month.",
    "I have scheduled a technician visit for Thursday between eight and noon.",
    "Just to be sure, is the account under your name?", "I'll need the last four digits of your card.",
    "The quote for home insurance is eighty five dollars a month.", "Perfect. Your order will be ready at five.",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NAMES = ["John Smith", "Maria Garcia", "David Lee", "Sarah Johnson", "Ahmed Khan", "Emily Brown", "Carlos Diaz",
         "Priya Patel", "Tom Walker", "Anna Nowak", "Kevin O'Brien", "Laura Chen"]
CITIES = ["Boston", "Denver", "Austin", "Seattle", "Chicago", "Miami", "Portland", "Atlanta"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
NUMS = ["two", "three", "four", "five", "six", "seven", "eight", "ten", "twelve"]
ORDINALS = ["first", "third", "fifth", "twelfth", "twentieth", "second", "ninth"]

SPLITS = ("train", "dev", "test")


def text_split(text: str) -> str:
    """Deterministic split of a text template: ~70 % train, 10 % dev, 20 % test."""
    h = zlib.crc32(text.encode()) % 10
    return "test" if h < 2 else "dev" if h == 2 else "train"


def pool(items: list[str], split: str) -> list[str]:
    chosen = [t for t in items if text_split(t) == split]
    return chosen or items[:2]


def fill(template: str, rng: np.random.Generator) -> str:
    def digits(n: int) -> str:
        return " ".join(rng.choice(DIGITS) for _ in range(n))
    return template.format(
        day=rng.choice(DAYS), num=rng.choice(NUMS), name=rng.choice(NAMES), city=rng.choice(CITIES),
        digits=digits(int(rng.integers(3, 7))), digits_part=digits(int(rng.integers(2, 4))),
        code=f"{rng.choice(['A', 'B', 'C', 'D', 'K', 'U'])} {digits(3)}", ordinal=rng.choice(ORDINALS))
