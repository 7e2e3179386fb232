"""Generic negatives: everyday messages that belong to no particular application (benchmark only).

Measured as out-of-scope examples for ``fit`` when a user gives none (issue 19's untried lever):
chit-chat, trivia, opinions, definitions, arithmetic, coding help, jokes, personal remarks and
requests from many everyday domains, in several phrasings and lengths. ``benchmarks.oos
--negatives`` (:mod:`benchmarks.oos_negatives`) drops those close to a route (:func:`far_from_routes`)
and measures the ways ``fit`` could use the rest; none helped, so the package does not ship them
(docs/fitting.md, docs/BENCHMARKS.md "Generic negatives").

They were written for this project without looking at the out-of-scope queries of any data set,
and together with :data:`synaptoroute_agents.followups.SELF_CONTAINED_PROTOTYPES` they are
dedicated to the public domain (CC0 1.0).
"""

from __future__ import annotations

import numpy as np

from synaptoroute_agents.followups import SELF_CONTAINED_PROTOTYPES

__all__ = ["GENERIC_NEGATIVES", "far_from_routes"]

_WRITTEN: tuple[str, ...] = (
    # chit-chat and personal remarks
    "hi there",
    "hello, how are you doing today",
    "good morning",
    "hey what's up",
    "how was your weekend",
    "i'm so bored right now",
    "i had a really long day at work",
    "thanks, that was helpful",
    "you're awesome",
    "that's not what i meant at all",
    "i feel a bit lonely tonight",
    "my cat just knocked over a glass of water",
    "i can't sleep",
    "do you have a favourite colour",
    "are you a real person",
    "what's your name",
    "how old are you",
    "where do you live",
    "do you dream",
    "can we just chat for a while",
    "i just got engaged!",
    "my sister is visiting next week",
    "ugh, mondays",
    "i love rainy sundays",
    "i think i'm getting a cold",
    "nevermind",
    "ok cool",
    "lol that's funny",
    "goodbye, talk later",
    "see you tomorrow",
    "sorry, wrong chat",
    "i'm just testing this thing",
    "are you listening to me",
    "what do you think about me",
    "tell me something interesting",
    "i'm hungry",
    "my neighbour's dog barks all night",
    "i finally finished my thesis",
    "guess what happened to me today",
    "what should i do with my life",
    # opinions
    "what is the best movie of all time",
    "which is better, cats or dogs",
    "do you like pineapple on pizza",
    "what's your opinion on modern art",
    "is it worth buying an electric car",
    "who is the greatest footballer ever",
    "should i learn french or spanish",
    "is coffee bad for you",
    "what do you think of social media",
    "are video games a waste of time",
    "what is the most beautiful city in the world",
    "is it rude to leave a party without saying goodbye",
    # trivia and knowledge
    "what is the capital of australia",
    "who painted the mona lisa",
    "when did the second world war end",
    "how deep is the pacific ocean",
    "what is the speed of light",
    "how many moons does jupiter have",
    "who discovered penicillin",
    "what is the largest animal on earth",
    "which planet is closest to the sun",
    "how long do elephants live",
    "what's the tallest building in the world",
    "who was the first president of the united states",
    "how many countries are in africa",
    "what is the longest river in asia",
    "why is the sky blue",
    "how do airplanes stay in the air",
    "what is the chemical symbol for gold",
    "how old is the universe",
    "where do penguins live",
    "who composed the four seasons",
    "how many strings does a violin have",
    "what is the national animal of scotland",
    "when was the printing press invented",
    "how do vaccines work",
    "why do cats purr",
    "what is the smallest country in the world",
    "what's the hottest place on earth",
    "how many hearts does an octopus have",
    # definitions
    "what does serendipity mean",
    "define entropy",
    "what is a haiku",
    "what's the meaning of the word ubiquitous",
    "what is blockchain in simple terms",
    "explain what inflation is",
    "what is a black hole",
    "what does it mean to be an introvert",
    "what is the difference between weather and climate",
    "what is machine learning",
    "what's a synonym for happy",
    "how do you spell necessary",
    "what is the plural of cactus",
    "what is a prime number",
    # arithmetic and units
    "what is 17 times 23",
    "what's 15 percent of 80",
    "square root of 144",
    "how much is 250 divided by 8",
    "convert 100 fahrenheit to celsius",
    "how many ounces in a pound",
    "how many centimetres are in a foot",
    "what is 2 to the power of 10",
    "add 345 and 789",
    "how many seconds are in a day",
    "what's half of three quarters",
    "how many days until christmas",
    # coding and computers
    "how do i reverse a string in python",
    "what is the difference between a list and a tuple",
    "write a sql query to count rows in a table",
    "why does my javascript say undefined is not a function",
    "how do i center a div in css",
    "explain recursion with an example",
    "how do i undo my last git commit",
    "what is a memory leak",
    "my laptop is running really slowly",
    "how do i take a screenshot on a mac",
    "how do i clear my browser cache",
    "what is the best programming language for beginners",
    "write a function that checks if a number is even",
    "how do i connect my printer to wifi",
    # jokes and fun
    "tell me a joke",
    "know any good puns",
    "tell me a riddle",
    "say something funny",
    "make me laugh",
    "tell me a fun fact",
    "flip a coin",
    "roll a dice for me",
    "pick a random number between one and ten",
    "let's play a game",
    "sing me a song",
    "tell me a bedtime story",
    "write a limerick about a frog",
    "what's a good knock knock joke",
    # writing and language
    "translate thank you very much into german",
    "how do you say cheers in italian",
    "write a birthday message for my grandmother",
    "help me write a cover letter",
    "summarize the plot of hamlet",
    "proofread this sentence for me",
    "give me a word that rhymes with orange",
    "write a haiku about the sea",
    "what's a good title for a mystery novel",
    "help me write a thank you note to my teacher",
    # cooking and food
    "how long should i boil an egg",
    "what can i make with chicken and rice",
    "give me a recipe for banana bread",
    "how do i make pancakes fluffy",
    "what wine goes with salmon",
    "is it safe to eat raw cookie dough",
    "how do i cook quinoa",
    "what spices go in a curry",
    "how do you make cold brew coffee",
    "what's a healthy breakfast idea",
    # health and fitness
    "how many hours of sleep do adults need",
    "what are the symptoms of dehydration",
    "how can i stop snoring",
    "what's a good stretching routine",
    "how many calories are in an avocado",
    "how do i get rid of hiccups",
    "is it better to run in the morning or evening",
    "how much water should i drink a day",
    "tips for reducing stress",
    "how do i start meditating",
    # home, garden, pets
    "how often should i water a cactus",
    "how do i unclog a sink",
    "what's the best way to clean windows",
    "how do i get rid of fruit flies",
    "when should i plant tomatoes",
    "how do i train my dog to sit",
    "what do hamsters eat",
    "how do i fix a squeaky door",
    "how do i paint a room quickly",
    "how often should i change my bed sheets",
    # travel, geography, culture
    "what are the best things to do in lisbon",
    "is it safe to drink tap water in mexico",
    "what should i pack for a ski trip",
    "when is the best time to visit japan",
    "what currency do they use in switzerland",
    "what time zone is new zealand in",
    "what are some famous landmarks in egypt",
    "how do people celebrate new year in china",
    # money, work, life admin (generic, no account or product)
    "how do i ask my boss for a raise",
    "what's a good way to save money each month",
    "how do i write a resume",
    "tips for a job interview",
    "how do i negotiate rent with my landlord",
    "what is a good credit score",
    "should i rent or buy a house",
    "how do taxes work in general",
    # sports, games, entertainment
    "who won the world cup in 2014",
    "explain the rules of cricket",
    "how do you play chess",
    "recommend a good podcast",
    "what are some good board games for families",
    "recommend a tv series like breaking bad",
    "who is the lead singer of coldplay",
    "what's a good video game for relaxing",
    "what movies are similar to inception",
    "suggest a song for a road trip",
    # science and nature
    "how do bees make honey",
    "why do leaves change colour in autumn",
    "what causes earthquakes",
    "how do birds know where to migrate",
    "can dogs see colours",
    "how does a rainbow form",
    "what is dna made of",
    "how hot is the surface of the sun",
    # philosophy and advice
    "what is the meaning of life",
    "is there life on other planets",
    "how do i make new friends as an adult",
    "how do i stop procrastinating",
    "give me some motivation",
    "how can i be more productive",
    "what's a good gift for a ten year old",
    "how do i deal with a difficult coworker",
    "what are some good habits to start",
    "how do i become a better listener",
    # misc requests of many kinds
    "set the mood with some relaxing music",
    "give me a random quote",
    "what's trending on the internet",
    "describe the colour blue to someone who can't see",
    "write a short story about a dragon",
    "draw me a picture of a cat",
    "what is the weirdest animal",
    "invent a new word and define it",
    "how do magnets work",
    "can you keep a secret",
    "what should i name my goldfish",
    "give me ideas for a date night",
    "plan a weekend itinerary for a city break",
    "what's a fun hobby to pick up",
    "how do i tie a tie",
    "how do i fold a paper airplane",
)

#: Every generic negative: the messages above, then the self-contained prototypes of
#: :mod:`synaptoroute_agents.followups`.
GENERIC_NEGATIVES: tuple[str, ...] = tuple(dict.fromkeys(_WRITTEN + SELF_CONTAINED_PROTOTYPES))


def far_from_routes(
    N: np.ndarray, X: np.ndarray, y: np.ndarray, n_routes: int, quantile: float = 0.25
) -> np.ndarray:
    """Which negatives ``N`` (unit rows) are far from every route of the rows ``(X, y)``.

    A route's own spread is measured: each of its examples' cosine to the centroid of its other
    examples (leave-one-out). A negative as close to a route's centroid as the ``quantile`` of
    those cosines (the lower quartile; 0: the route's farthest example) could be one of its
    examples, and is dropped. A route with a single example
    has no spread: the median lower quartile of the other routes stands in for it.
    """
    N = np.asarray(N, dtype=np.float32)
    if not len(N):
        return np.zeros(0, bool)
    sums = np.zeros((n_routes, X.shape[1]))
    np.add.at(sums, y, np.asarray(X, dtype=np.float64))
    counts = np.bincount(y, minlength=n_routes)
    bound = np.full(n_routes, np.nan)
    for r in np.flatnonzero(counts >= 2):
        R = np.asarray(X[y == r], dtype=np.float64)
        rest = sums[r] - R
        rest /= np.maximum(np.linalg.norm(rest, axis=1, keepdims=True), 1e-12)
        bound[r] = float(np.quantile((R * rest).sum(axis=1), quantile))
    fill = float(np.nanmedian(bound)) if np.isfinite(bound).any() else 0.5
    bound = np.where(np.isfinite(bound), bound, fill)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    C = sums / np.where(norms > 0, norms, 1)
    return np.asarray(~((N @ C.T.astype(np.float32)) >= bound[None, :]).any(axis=1))
